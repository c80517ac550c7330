package retry

import (
	"errors"
	"fmt"

	"github.com/egressgw/egressgw/providers"
)

// giveUp reports the last cloud error (so that its sentinel says why: throttled, unavailable) joined with
// the reason to stop (the deadline, the client-side limit). Without a cloud error, the call is named and
// the sentinel is the client-side throttling, or ErrUnavailable: the cloud did not answer in time.
func giveUp(name string, last, why error) error {
	if last == nil && errors.Is(why, providers.ErrThrottled) {
		return fmt.Errorf("%s: %w", name, why)
	}
	if last == nil {
		return fmt.Errorf("%s: no answer before the deadline: %w: %w", name, providers.ErrUnavailable, why)
	}
	return fmt.Errorf("%w (gave up: %w)", last, why)
}
