package simkit

import (
	"context"
	"time"
)

// Delay waits d and reports whether it did, or returns false as soon as ctx ends: a simulator's answer
// latency (false: the client gave up, answer as the cloud would to a request cut short) or a simulated
// daemon's pause between rounds.
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
