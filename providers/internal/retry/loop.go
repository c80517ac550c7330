package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/egressgw/egressgw/providers"
)

// Policy is how one provider retries: the same for all its calls.
type Policy struct {
	Backoff Backoff
	// RetryAfter, when set, reads the wait the cloud asked for from its refusal (0: it asked for none,
	// use Backoff). Azure's throttling answers carry Retry-After.
	RetryAfter func(error) time.Duration
	Log        *slog.Logger
	// LogMessage is the debug message of each retry ("retrying EC2 call").
	LogMessage string
}

// Call is one cloud call as the loop sees it.
type Call struct {
	// Name names the call in the give-up error when the cloud never answered ("ec2:DescribeSubnets").
	Name string
	// LogAttrs identify the call in the retry log ("action", "DescribeSubnets").
	LogAttrs []any
	// Limiter is the client-side bucket the call takes a token of before every try; nil: none.
	Limiter *rate.Limiter
	// Classify turns an SDK error into the provider's error, wrapping a providers sentinel;
	// providers.Retryable on its result decides whether to try again.
	Classify func(error) error
}

// Do runs fn, retrying throttling and server or connection failures (as c.Classify says) with the
// policy's backoff until it succeeds, fails for good, or ctx ends. There is no retry quota: only the
// caller's deadline bounds the retries, so a failover keeps trying as long as it may.
func Do[T any](ctx context.Context, pol Policy, c Call, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	var last error
	for attempt := 0; ; attempt++ {
		if err := wait(ctx, c.Limiter); err != nil {
			return zero, giveUp(c.Name, last, fmt.Errorf("client-side rate limit: %w: %w", providers.ErrThrottled, err))
		}
		if err := providers.CheckFence(ctx); err != nil {
			return zero, fmt.Errorf("%s: %w", c.Name, err)
		}
		out, err := fn(ctx)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			// The answer may have arrived as the deadline passed: keep the cloud's error, and say that
			// the deadline ended the retries either way.
			if !errors.Is(err, ctx.Err()) {
				last = c.Classify(err)
			}
			return zero, giveUp(c.Name, last, ctx.Err())
		}
		if last = c.Classify(err); !providers.Retryable(last) {
			return zero, last
		}
		d := pol.delay(err, attempt)
		if pol.Log != nil {
			pol.Log.Debug(pol.LogMessage, append(c.LogAttrs, "attempt", attempt+1, "delay", d, "error", last)...)
		}
		if err := Sleep(ctx, d); err != nil {
			return zero, giveUp(c.Name, last, err)
		}
	}
}

// delay is the wait the cloud asked for, if the policy reads one and it did, else the backoff's.
func (pol Policy) delay(err error, attempt int) time.Duration {
	if pol.RetryAfter != nil {
		if d := pol.RetryAfter(err); d > 0 {
			return d
		}
	}
	return pol.Backoff.Delay(attempt)
}

// Sleep waits d, or returns at once when ctx would end first: waiting for a retry that cannot happen only
// delays the caller's next decision.
func Sleep(ctx context.Context, d time.Duration) error {
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
