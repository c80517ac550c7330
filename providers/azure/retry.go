package azure

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/egressgw/egressgw/providers"
)

// Backoff is the wait between tries of a refused call that did not say when to come back: exponential
// from Base, capped at Max, half of it random so that callers refused together do not return together.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff starts at half a second and stays short: a failover tries several times within its
// budget, and ARM sends Retry-After with its throttling answers anyway.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 30 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	return d/2 + rand.N(d/2+1)
}

// Limit is a client-side token bucket: Burst calls at once, PerSecond after that.
type Limit struct {
	Burst     int
	PerSecond float64
}

// Limits are the client-side buckets for reads (GETs, polls included) and writes (NIC PUTs).
type Limits struct {
	Reads, Writes Limit
}

// DefaultLimits stay below Azure's limits per principal: ARM's buckets (reads 250 refilled 25/s, writes
// 200 refilled 10/s) and the Network resource provider's 1000 writes and 10000 reads per five minutes
// (3.3 and 33 per second), so that egressgw alone cannot exhaust them for the subscription's other tools.
var DefaultLimits = Limits{
	Reads:  Limit{Burst: 200, PerSecond: 20},
	Writes: Limit{Burst: 100, PerSecond: 3},
}

// call runs one ARM request, retrying throttling, busy resources, server errors and broken connections
// until it succeeds, fails for good, or ctx ends. The wait honours Retry-After; when it would outlast
// the deadline the call gives up at once with the cloud's reason. The SDK's retry policy is off (see
// New): it gives up after three tries, refuses a Retry-After above 60 s, and does not know that a 409
// AnotherOperationInProgress is worth waiting for.
func call[T any](ctx context.Context, p *Provider, write bool, what string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var last error
	for attempt := 0; ; attempt++ {
		if err := p.waitLimiter(ctx, write); err != nil {
			return zero, giveUp(what, last, fmt.Errorf("client-side rate limit: %w: %w", providers.ErrThrottled, err))
		}
		out, err := fn(ctx)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return zero, giveUp(what, last, err)
		}
		if last = classify(what, err); !providers.Retryable(last) {
			return zero, last
		}
		d := retryAfter(err)
		if d <= 0 {
			d = p.opts.Backoff.delay(attempt)
		}
		p.log.Debug("retrying ARM request", "request", what, "attempt", attempt+1, "delay", d, "error", last)
		if err := sleep(ctx, d); err != nil {
			return zero, giveUp(what, last, err)
		}
	}
}

func (p *Provider) waitLimiter(ctx context.Context, write bool) error {
	l := p.reads
	if write {
		l = p.writes
	}
	if err := l.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%v: %w", err, context.DeadlineExceeded)
	}
	return nil
}

// giveUp reports the last cloud error (so the sentinel says why) joined with the reason for stopping.
func giveUp(what string, last, why error) error {
	if last == nil && errors.Is(why, providers.ErrThrottled) {
		return fmt.Errorf("%s: %w", what, why)
	}
	if last == nil {
		return fmt.Errorf("%s: no answer before the deadline: %w: %w", what, providers.ErrUnavailable, why)
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
