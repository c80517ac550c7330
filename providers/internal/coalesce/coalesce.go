// Package coalesce queues the edits of one cloud object that is written whole (a GCP nic0's alias list,
// an Azure NIC's ip configurations) so that the edits waiting at one moment go out in one
// read-modify-write. Such an object takes one write at a time, each a long-running operation of seconds;
// ten IPs failing over to one gateway then cost one or two writes, not ten in a row.
package coalesce

import (
	"context"
	"sync"
	"time"
)

// Request is one edit waiting in a Queue for the write that carries it.
type Request[E any] struct {
	Edit     E
	deadline time.Time
	done     chan error
}

// Answer gives the edit's caller its outcome. The batch writer calls it once per request.
func (r *Request[E]) Answer(err error) { r.done <- err }

// Deadline is how long the edit's caller waits: its context's deadline, or Queue.Fallback from Add.
func (r *Request[E]) Deadline() time.Time { return r.deadline }

// Answer gives every request of reqs the same outcome.
func Answer[E any](reqs []*Request[E], err error) {
	for _, r := range reqs {
		r.Answer(err)
	}
}

// Queue holds the waiting edits per key (one object). The zero value is ready; set its fields before use.
type Queue[E any] struct {
	// Window is how long a key's runner waits before its first batch, so that the edits sent at once (the
	// manager's workers call together) make one batch rather than one alone and the rest after it.
	Window time.Duration
	// Fallback is the deadline (from Add) of an edit whose context has none.
	Fallback time.Duration

	mu    sync.Mutex
	queue map[string][]*Request[E] // the keys with a runner at work, and what waits for it
}

// Add queues edit under key and returns the channel its answer arrives on. The first edit of an idle key
// starts a runner that hands write the waiting edits, batch after batch, until none is left. Each batch
// runs under a context that lasts as long as its longest-waiting edit may wait, even when a caller gives
// up: cancelling a write half-way helps nobody.
func (q *Queue[E]) Add(ctx context.Context, key string, edit E, write func(context.Context, []*Request[E])) <-chan error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(q.Fallback)
	}
	req := &Request[E]{Edit: edit, deadline: deadline, done: make(chan error, 1)}
	q.mu.Lock()
	if q.queue == nil {
		q.queue = map[string][]*Request[E]{}
	}
	pending, running := q.queue[key]
	q.queue[key] = append(pending, req)
	q.mu.Unlock()
	if !running {
		go q.run(key, write)
	}
	return req.done
}

func (q *Queue[E]) run(key string, write func(context.Context, []*Request[E])) {
	time.Sleep(q.Window)
	for {
		q.mu.Lock()
		batch := q.queue[key]
		if len(batch) == 0 {
			delete(q.queue, key)
			q.mu.Unlock()
			return
		}
		q.queue[key] = []*Request[E]{} // still running: later edits wait for the next batch
		q.mu.Unlock()
		ctx, cancel := context.WithDeadline(context.Background(), latest(batch))
		write(ctx, batch)
		cancel()
	}
}

// latest is the latest deadline of the batch's edits.
func latest[E any](batch []*Request[E]) time.Time {
	last := batch[0].deadline
	for _, r := range batch[1:] {
		if r.deadline.After(last) {
			last = r.deadline
		}
	}
	return last
}
