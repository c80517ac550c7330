package simkit

import (
	"context"
	"sync"
	"time"
)

// Latency is a simulator's injected answer latency: every answer waits it. The zero value is none. Safe
// for concurrent use: requests read it while a test sets it.
type Latency struct {
	mu sync.Mutex
	d  time.Duration
}

// Set makes every answer from now on wait d.
func (l *Latency) Set(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = d
}

// Wait waits the latency and reports false when the client gave up (ctx ended) first: the simulator
// then answers as the cloud would to a request cut short.
func (l *Latency) Wait(ctx context.Context) bool {
	l.mu.Lock()
	d := l.d
	l.mu.Unlock()
	return Delay(ctx, d)
}

// Delay waits d and reports whether it did, or returns false as soon as ctx ends.
func Delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
