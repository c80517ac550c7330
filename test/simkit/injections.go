package simkit

// Injections are the faults queued for the next calls of each key (an action or method; "" for every
// call), as a simulator's InjectError sets them: each fires for its count of calls, earlier ones first.
// Not safe for concurrent use: the simulator's lock guards it.
type Injections[F any] struct {
	queues map[string][]injection[F]
}

type injection[F any] struct {
	fault F
	n     int
}

// Add queues fault for the next n calls of key.
func (q *Injections[F]) Add(key string, fault F, n int) {
	if q.queues == nil {
		q.queues = map[string][]injection[F]{}
	}
	q.queues[key] = append(q.queues[key], injection[F]{fault: fault, n: n})
}

// Next takes the fault a call of key meets, if any: one queued for key first, then one for every call.
func (q *Injections[F]) Next(key string) (F, bool) {
	for _, k := range []string{key, ""} {
		if inj := q.queues[k]; len(inj) > 0 {
			if inj[0].n--; inj[0].n <= 0 {
				q.queues[k] = inj[1:]
			}
			return inj[0].fault, true
		}
	}
	var zero F
	return zero, false
}

// Clear drops the faults that have not fired yet.
func (q *Injections[F]) Clear() { q.queues = nil }

// Countdown counts, per key, the next calls to treat specially (e.g. whose answer is lost after the
// request took effect). Not safe for concurrent use: the simulator's lock guards it.
type Countdown map[string]int

// Take reports whether a call of key is one of them, counting it down.
func (c Countdown) Take(key string) bool {
	if c[key] <= 0 {
		return false
	}
	c[key]--
	return true
}
