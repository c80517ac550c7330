package gcp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	gax "github.com/googleapis/gax-go/v2"
	"golang.org/x/time/rate"

	"github.com/egressgw/egressgw/providers"
)

// Backoff is the wait between tries of a throttled or failed call: exponential from Base, capped at Max,
// half of it random ("equal jitter") so that callers throttled together do not come back together.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff is short: Compute Engine's rate quotas refill per minute, but a failover should keep
// trying several times within a few seconds, and the client-side limit keeps the steady rate low.
var DefaultBackoff = Backoff{Base: 250 * time.Millisecond, Max: 4 * time.Second}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 30 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	return d/2 + rand.N(d/2+1)
}

// Request groups of Compute Engine's per-project, per-minute API rate quotas.
const (
	groupRead       = "read"
	groupWrite      = "write"
	groupOperations = "operations"
)

// Limit is a client-side token bucket for one request group: Burst calls at once, PerSecond after that.
type Limit struct {
	Burst     int
	PerSecond float64
}

// DefaultLimits keep egressgw's steady rate far below Compute Engine's default per-minute rate quotas
// (which the project's other tools share) while leaving a failover burst its room.
var DefaultLimits = map[string]Limit{
	groupRead:       {Burst: 100, PerSecond: 10},
	groupWrite:      {Burst: 50, PerSecond: 5},
	groupOperations: {Burst: 200, PerSecond: 20},
}

// noRetry turns off the generated client's own retries (503/504 with backoff up to a minute), so that
// only call's retries, bounded by the caller's deadline, apply.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// call runs one API method, retrying throttling and server or connection failures with jittered
// backoff until it succeeds, fails for another reason, or ctx ends.
func call[T any](ctx context.Context, p *Provider, group, method string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var last error
	for attempt := 0; ; attempt++ {
		if err := p.waitLimiter(ctx, group); err != nil {
			return zero, giveUp(method, last, fmt.Errorf("client-side rate limit: %w: %w", providers.ErrThrottled, err))
		}
		out, err := fn(ctx)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return zero, giveUp(method, last, err)
		}
		if last = classify(method, err); !providers.Retryable(last) {
			return zero, last
		}
		d := p.opts.Backoff.delay(attempt)
		p.log.Debug("retrying compute call", "method", method, "attempt", attempt+1, "delay", d, "error", last)
		if err := sleep(ctx, d); err != nil {
			return zero, giveUp(method, last, err)
		}
	}
}

func (p *Provider) waitLimiter(ctx context.Context, group string) error {
	l := p.limiters[group]
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

func newLimiters(limits map[string]Limit) map[string]*rate.Limiter {
	out := map[string]*rate.Limiter{}
	for group, l := range limits {
		out[group] = rate.NewLimiter(rate.Limit(l.PerSecond), max(1, l.Burst))
	}
	return out
}

// giveUp reports the last cloud error (so that the sentinel says why) joined with the reason to stop.
func giveUp(method string, last, why error) error {
	if last == nil && errors.Is(why, providers.ErrThrottled) {
		return fmt.Errorf("compute %s: %w", method, why)
	}
	if last == nil {
		return fmt.Errorf("compute %s: no answer before the deadline: %w: %w", method, providers.ErrUnavailable, why)
	}
	return fmt.Errorf("%w (gave up: %w)", last, why)
}

// sleep waits d, or returns at once when ctx would end first.
func sleep(ctx context.Context, d time.Duration) error {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
