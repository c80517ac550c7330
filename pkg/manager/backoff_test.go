package manager

import (
	"testing"
	"time"
)

// TestNextAttemptKeepsTheDocumentedFigures checks the waits backoff.go documents, with the default
// RetryMin 200 ms and RetryMax 30 s: a transient failure doubles from 200 ms up to 30 s, minus up to half
// of it; a refused write waits 30 s; a split batch and a failed sync 200 ms.
func TestNextAttemptKeepsTheDocumentedFigures(t *testing.T) {
	c := &Controller{cfg: DefaultConfig()}
	for failures, full := range map[int]time.Duration{1: 200 * time.Millisecond, 2: 400 * time.Millisecond,
		8: 25600 * time.Millisecond, 9: 30 * time.Second, 100: 30 * time.Second} {
		for range 50 {
			if d := c.nextAttempt(failures, retryTransient); d < full/2 || d > full {
				t.Fatalf("failure %d: wait %s, want within [%s, %s]", failures, d, full/2, full)
			}
		}
	}
	for why, want := range map[retryReason]time.Duration{retryRefused: 30 * time.Second, retryAlone: 200 * time.Millisecond,
		retrySync: 200 * time.Millisecond} {
		if d := c.nextAttempt(3, why); d != want {
			t.Errorf("reason %d: wait %s, want %s", why, d, want)
		}
	}
}
