package manager

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestQueueRunsFailoverFirst queues background and placement work before failover work on a single
// worker that is busy: when it frees up, failover work must run first, then placement, then background,
// each in the order it came.
func TestQueueRunsFailoverFirst(t *testing.T) {
	q := newOpQueue()
	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	started := make(chan struct{})
	record := func(name string) func(context.Context) {
		return func(context.Context) { mu.Lock(); order = append(order, name); mu.Unlock() }
	}
	q.push(op{priority: PriorityBackground, name: "busy", run: func(context.Context) { close(started); <-release }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx, 1); close(done) }()
	<-started
	// The worker reserved for failover is kept busy too, so that one worker runs everything below.
	reservedBusy, releaseReserved := make(chan struct{}), make(chan struct{})
	defer close(releaseReserved)
	q.push(op{priority: PriorityFailover, name: "busy", run: func(context.Context) { close(reservedBusy); <-releaseReserved }})
	<-reservedBusy
	for _, o := range []op{
		{priority: PriorityBackground, name: "describe-1"},
		{priority: PriorityPlacement, name: "place-1"},
		{priority: PriorityBackground, name: "describe-2"},
		{priority: PriorityFailover, name: "failover-1"},
		{priority: PriorityPlacement, name: "place-2"},
		{priority: PriorityFailover, name: "failover-2"},
	} {
		o.run = record(o.name)
		q.push(o)
	}
	all := make(chan struct{})
	q.push(op{priority: PriorityBackground, name: "last", run: func(context.Context) { close(all) }})
	close(release)
	<-all
	want := []string{"failover-1", "failover-2", "place-1", "place-2", "describe-1", "describe-2"}
	mu.Lock()
	defer mu.Unlock()
	defer func() { cancel(); go func() { <-done }() }()
	if len(order) != len(want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("ran %v, want %v", order, want)
		}
	}
}

// TestFailoverHasWorkersOfItsOwn keeps every general worker busy with a background read that does not
// end: a failover operation must still run.
func TestFailoverHasWorkersOfItsOwn(t *testing.T) {
	q := newOpQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hang := make(chan struct{})
	defer close(hang)
	for range 2 {
		q.push(op{priority: PriorityBackground, name: "describe", run: func(context.Context) { <-hang }})
	}
	go q.run(ctx, 2)
	ran := make(chan struct{})
	q.push(op{priority: PriorityFailover, name: "failover", run: func(context.Context) { close(ran) }})
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the failover waited behind the background reads")
	}
}
