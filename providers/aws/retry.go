package aws

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"

	"github.com/egressgw/egressgw/providers"
)

// Backoff is the wait between tries of a throttled or failed EC2 call: exponential from Base, capped at Max,
// half of it random ("equal jitter") so that many callers throttled together do not come back together.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff starts at one refill interval of EC2's mutating buckets (5 per second) and stays short, so
// a failover keeps trying several times within its two-second budget.
var DefaultBackoff = Backoff{Base: 200 * time.Millisecond, Max: 2 * time.Second}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 30 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	return d/2 + rand.N(d/2+1)
}

// Limit is a client-side token bucket for one EC2 action: Burst calls at once, PerSecond after that.
type Limit struct {
	Burst     int
	PerSecond float64
}

// DefaultLimits stay below EC2's own buckets (Assign/Unassign 100 refilled 5/s, Associate/Disassociate 50
// refilled 5/s, filtered Describe 100 refilled 20/s) so that egressgw alone cannot drain them: the account's
// other tools (a CNI, autoscalers) share them.
var DefaultLimits = map[string]Limit{
	"AssignPrivateIpAddresses":   {Burst: 80, PerSecond: 4},
	"UnassignPrivateIpAddresses": {Burst: 80, PerSecond: 4},
	"AssociateAddress":           {Burst: 40, PerSecond: 4},
	"DisassociateAddress":        {Burst: 40, PerSecond: 4},
	"DescribeInstances":          {Burst: 80, PerSecond: 16},
	"DescribeNetworkInterfaces":  {Burst: 80, PerSecond: 16},
	"DescribeSubnets":            {Burst: 80, PerSecond: 16},
	"DescribeInstanceTypes":      {Burst: 80, PerSecond: 16},
	"DescribeAddresses":          {Burst: 80, PerSecond: 16},
	// The gateway interface lifecycle: a few calls per gateway node, once.
	"CreateNetworkInterface":          {Burst: 20, PerSecond: 2},
	"AttachNetworkInterface":          {Burst: 20, PerSecond: 2},
	"ModifyNetworkInterfaceAttribute": {Burst: 20, PerSecond: 2},
	"DetachNetworkInterface":          {Burst: 20, PerSecond: 2},
	"DeleteNetworkInterface":          {Burst: 20, PerSecond: 2},
}

func newLimiters(limits map[string]Limit) map[string]*rate.Limiter {
	out := map[string]*rate.Limiter{}
	for action, l := range limits {
		out[action] = rate.NewLimiter(rate.Limit(l.PerSecond), max(1, l.Burst))
	}
	return out
}

// call runs one EC2 action, retrying throttling and server or connection failures with jittered backoff
// until it succeeds, fails for good, or ctx ends. There is no retry quota: the SDK's own retryer (whose
// 500-token quota a throttling storm drains in 100 retries, after which every call fails at once) is
// replaced by a single-attempt one in New, so only the caller's deadline bounds a failover.
func call[T any](ctx context.Context, p *Provider, action string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var last error
	for attempt := 0; ; attempt++ {
		if err := p.waitLimiter(ctx, action); err != nil {
			return zero, giveUp(action, last, fmt.Errorf("client-side rate limit: %w: %w", providers.ErrThrottled, err))
		}
		out, err := fn(ctx)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			// The deadline cut the request short: the reason to report is the previous cloud error, or
			// that the cloud did not answer in time.
			return zero, giveUp(action, last, err)
		}
		if last = classify(action, err); !providers.Retryable(last) {
			return zero, last
		}
		d := p.backoff.delay(attempt)
		p.log.Debug("retrying EC2 call", "action", action, "attempt", attempt+1, "delay", d, "error", last)
		if err := sleep(ctx, d); err != nil {
			return zero, giveUp(action, last, err)
		}
	}
}

// waitLimiter takes a token of action's client-side bucket. The limiter refuses at once when the wait
// would outlast ctx's deadline; that is reported as the deadline, which it is.
func (p *Provider) waitLimiter(ctx context.Context, action string) error {
	l := p.limiters[action]
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

// giveUp reports the last cloud error (so the sentinel says why: throttled, unavailable) joined with the
// reason for stopping.
func giveUp(action string, last, why error) error {
	if last == nil && errors.Is(why, providers.ErrThrottled) {
		return fmt.Errorf("ec2:%s: %w", action, why)
	}
	if last == nil {
		return fmt.Errorf("ec2:%s: no answer before the deadline: %w: %w", action, providers.ErrUnavailable, why)
	}
	return fmt.Errorf("%w (gave up: %w)", last, why)
}

// sleep waits d, or returns at once when ctx would end first: waiting for a retry that cannot happen only
// delays the caller's next decision.
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
