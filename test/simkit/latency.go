package simkit

import (
	"context"
	"time"
)

// Delay waits d, the injected answer latency, and reports false when the client gave up (ctx ended)
// first, so that the simulator answers as the cloud would to a request cut short.
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
