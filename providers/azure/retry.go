package azure

import (
	"context"
	"time"

	"github.com/egressgw/egressgw/providers/internal/retry"
)

// Backoff is the wait between tries of a refused call that did not say when to come back: exponential
// from Base, capped at Max, half of it random so that callers refused together do not return together.
type Backoff = retry.Backoff

// DefaultBackoff starts at half a second and stays short: a failover tries several times within its
// budget, and ARM sends Retry-After with its throttling answers anyway.
var DefaultBackoff = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second}

// Limit is a client-side token bucket: Burst calls at once, PerSecond after that.
type Limit = retry.Limit

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
// (as classify says) until it succeeds, fails for good, or ctx ends. The wait honours Retry-After (the
// retry policy's RetryAfter, see setOptions); when it would outlast the deadline the call gives up at once
// with the cloud's reason. The SDK's retry policy is off (see New): it gives up after three tries, refuses
// a Retry-After above 60 s, and does not know that a 409 AnotherOperationInProgress is worth waiting for.
func call[T any](ctx context.Context, p *Provider, write bool, what string, fn func(context.Context) (T, error)) (T, error) {
	l := p.reads
	if write {
		l = p.writes
	}
	return retry.Do(ctx, p.retry, retry.Call{
		Name:     what,
		LogAttrs: []any{"request", what},
		Limiter:  l,
		Classify: func(err error) error { return classify(what, err) },
	}, fn)
}
