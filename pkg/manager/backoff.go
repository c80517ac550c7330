package manager

import (
	"math/rand/v2"
	"time"
)

// The manager's one backoff. Everything it retries waits nextAttempt after a failure: an IP's cloud
// operation (ops.go), a Locate (reads.go, and a new leader's first one in recovery.go), the removal of
// a former gateway node's egress NIC (attachments.go), a failed sync (controller.go), and, before any
// Controller exists, a replica's wait for the API server at start (apiwait.go). Each keeps its
// own count of consecutive failures, reset by a success; the waits come from here only. The loop is
// woken when a wait ends (kickAfter); only a new leader's first Locate, before the loop runs, waits in
// place.
//
// With the default RetryMin 200 ms and RetryMax 30 s:
//
//	retryTransient   200 ms, 400 ms, 800 ms, ... 25.6 s, then 30 s, each minus up to half of it (jitter)
//	retryRefused     30 s every time
//	retryAlone       200 ms every time
//	retrySync        200 ms every time

// retryReason says what failed, which decides how long to wait.
type retryReason int

const (
	// retryTransient: throttled, unavailable, timed out, or a read that failed. The wait doubles so that
	// a struggling cloud is not hammered, and jitter spreads the retries of many IPs that failed
	// together (a throttled batch), which would otherwise come back together and be throttled again.
	// A failed read backs off the same way whatever the error: a permission refused right after the
	// install is often only the IAM policy still propagating.
	retryTransient retryReason = iota
	// retryRefused: the cloud refused a write as it is (permissions, an address it will not give).
	// Retrying soon will not help; the status message says what to change.
	retryRefused
	// retryAlone: the cloud refused a batch an IP was in, maybe because of another IP of it. Each IP is
	// tried again at once in a call of its own, so that the others go (failover must not wait for the
	// culprit) and the culprit is named.
	retryAlone
	// retrySync: a sync could not read or write the API server. Soon, without growth: the informers'
	// cache is local, and a failed status write holds up the moves of its gateway only.
	retrySync
)

// nextAttempt is how long to wait after the failures-th consecutive failure (1 for the first) of
// something that failed for why.
func (c *Controller) nextAttempt(failures int, why retryReason) time.Duration {
	switch why {
	case retryRefused:
		return c.cfg.RetryMax
	case retryAlone, retrySync:
		return c.cfg.RetryMin
	}
	return doubling(c.cfg.RetryMin, c.cfg.RetryMax, failures)
}

// doubling is lo doubled after each of failures-1 failures, capped at hi, minus up to half of it.
func doubling(lo, hi time.Duration, failures int) time.Duration {
	d := lo << min(max(failures-1, 0), 20)
	if d <= 0 || d > hi {
		d = hi
	}
	return d - time.Duration(rand.Int64N(int64(d)/2+1))
}
