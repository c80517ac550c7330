// Package deadline bounds provider calls in time.
package deadline

import (
	"context"
	"time"
)

// Ensure gives ctx a deadline of timeout from now when it has none, so that no provider call can wait
// on the cloud forever; a deadline the caller set is kept.
func Ensure(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, timeout)
}
