package retry

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"
)

// Limit is a client-side token bucket: Burst calls at once, PerSecond after that.
type Limit struct {
	Burst     int
	PerSecond float64
}

// Limiter is the bucket as a rate.Limiter; a Burst below 1 is taken as 1 so that calls can pass at all.
func (l Limit) Limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(l.PerSecond), max(1, l.Burst))
}

// Limiters builds one bucket per key (an action, a request group).
func Limiters[K comparable](limits map[K]Limit) map[K]*rate.Limiter {
	out := make(map[K]*rate.Limiter, len(limits))
	for k, l := range limits {
		out[k] = l.Limiter()
	}
	return out
}

// wait takes a token of l (nil: no client-side limit). The limiter refuses at once when the wait would
// outlast ctx's deadline; that is reported as the deadline, which it is.
func wait(ctx context.Context, l *rate.Limiter) error {
	if l == nil {
		return ctx.Err()
	}
	if err := l.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%v: %w", err, context.DeadlineExceeded)
	}
	return nil
}
