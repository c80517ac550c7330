// Package retry is the retry mechanism the egressgw cloud providers share: jittered exponential backoff,
// client-side token buckets, and a loop that retries what the provider's own classification calls
// retryable until the call succeeds, fails for good, or the caller's deadline ends. Which cloud errors
// are retryable stays each provider's own decision (its classify function).
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait between tries of a throttled or failed call: exponential from Base, capped at Max,
// half of it random ("equal jitter") so that callers throttled together do not come back together.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the wait before try attempt+1 (attempt counts from 0).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Max
	if attempt < 30 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	return d/2 + rand.N(d/2+1)
}
