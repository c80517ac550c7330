package gcp

import (
	"context"
	"time"

	gax "github.com/googleapis/gax-go/v2"

	"github.com/egressgw/egressgw/providers/internal/retry"
)

// Backoff is the wait between tries of a throttled or failed call: exponential from Base, capped at Max,
// half of it random ("equal jitter") so that callers throttled together do not come back together.
type Backoff = retry.Backoff

// DefaultBackoff is short: Compute Engine's rate quotas refill per minute, but a failover should keep
// trying several times within a few seconds, and the client-side limit keeps the steady rate low.
var DefaultBackoff = Backoff{Base: 250 * time.Millisecond, Max: 4 * time.Second}

// Request groups of Compute Engine's per-project, per-minute API rate quotas.
const (
	groupRead       = "read"
	groupWrite      = "write"
	groupOperations = "operations"
)

// Limit is a client-side token bucket for one request group: Burst calls at once, PerSecond after that.
type Limit = retry.Limit

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

// call runs one API method of a request group, retrying throttling and server or connection failures
// (as classify says) with jittered backoff until it succeeds, fails for another reason, or ctx ends.
func call[T any](ctx context.Context, p *Provider, group, method string, fn func(context.Context) (T, error)) (T, error) {
	return retry.Do(ctx, p.retry, retry.Call{
		Name:     "compute " + method,
		LogAttrs: []any{"method", method},
		Limiter:  p.limiters[group],
		Classify: func(err error) error { return classify(method, err) },
	}, fn)
}
