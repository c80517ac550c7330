package aws

import (
	"context"
	"time"

	"github.com/egressgw/egressgw/providers/internal/retry"
)

// Backoff is the wait between tries of a throttled or failed EC2 call: exponential from Base, capped at Max,
// half of it random ("equal jitter") so that many callers throttled together do not come back together.
type Backoff = retry.Backoff

// DefaultBackoff starts at one refill interval of EC2's mutating buckets (5 per second) and stays short, so
// a failover keeps trying several times within its two-second budget.
var DefaultBackoff = Backoff{Base: 200 * time.Millisecond, Max: 2 * time.Second}

// Limit is a client-side token bucket for one EC2 action: Burst calls at once, PerSecond after that.
type Limit = retry.Limit

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

// call runs one EC2 action, retrying throttling and server or connection failures (as classify says) with
// jittered backoff until it succeeds, fails for good, or ctx ends. There is no retry quota: the SDK's own
// retryer (whose 500-token quota a throttling storm drains in 100 retries, after which every call fails at
// once) is replaced by a single-attempt one in New, so only the caller's deadline bounds a failover.
func call[T any](ctx context.Context, p *Provider, action string, fn func(context.Context) (T, error)) (T, error) {
	return retry.Do(ctx, p.retry, retry.Call{
		Name:     "ec2:" + action,
		LogAttrs: []any{"action", action},
		Limiter:  p.limiters[action],
		Classify: func(err error) error { return classify(action, err) },
	}, fn)
}
