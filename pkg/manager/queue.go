package manager

import (
	"context"
	"sync"
)

// Priority orders cloud operations: failover first, because traffic is failing until it is done.
type Priority int

const (
	// PriorityFailover: an IP held by a node that failed or is going away.
	PriorityFailover Priority = iota
	// PriorityPlacement: a new IP, or a public IP to associate.
	PriorityPlacement
	// PriorityBackground: reading the cloud's truth, releasing IPs nobody wants.
	PriorityBackground
	priorities
)

func (p Priority) String() string {
	return [...]string{"failover", "placement", "background"}[p]
}

// op is one unit of cloud work.
type op struct {
	priority Priority
	name     string // for logs
	run      func(ctx context.Context)
}

// opQueue runs operations on a fixed number of workers, always the most urgent first and, within a
// priority, in the order they came.
type opQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending [priorities][]op
	closed  bool
}

func newOpQueue() *opQueue {
	q := &opQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *opQueue) push(o op) {
	q.mu.Lock()
	q.pending[o.priority] = append(q.pending[o.priority], o)
	q.mu.Unlock()
	q.cond.Broadcast() // a worker that may not take o must not swallow the wake-up
}

// pop blocks until an operation is available or the queue is closed (ok false). A worker reserved for
// failover takes failover operations only.
func (q *opQueue) pop(reserved bool) (op, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if q.closed {
			return op{}, false
		}
		for p := range q.pending {
			if len(q.pending[p]) > 0 && (!reserved || Priority(p) == PriorityFailover) {
				o := q.pending[p][0]
				q.pending[p] = q.pending[p][1:]
				return o, true
			}
		}
		q.cond.Wait()
	}
}

// reservedWorkers is how many workers run failover operations only, besides the n that run any: a
// failover never waits behind reads of the cloud (each up to the cloud timeout) that occupy the others.
func reservedWorkers(n int) int { return max(1, n/4) }

// run starts n workers, and reservedWorkers(n) more for failover, and returns when ctx ends and the
// workers have finished their current operation; operations still queued are dropped, which is safe
// because every operation is derived again from the state by the next leader or sync.
func (q *opQueue) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for i := range n + reservedWorkers(n) {
		reserved := i >= n
		wg.Go(func() {
			for {
				o, ok := q.pop(reserved)
				if !ok {
					return
				}
				o.run(ctx)
			}
		})
	}
	<-ctx.Done()
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
	wg.Wait()
}

// depth returns how many operations wait, per priority.
func (q *opQueue) depth() [priorities]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	var d [priorities]int
	for p := range q.pending {
		d[p] = len(q.pending[p])
	}
	return d
}
