package providers

import (
	"context"
	"errors"
	"fmt"
)

// ErrFenced refuses a cloud request of a caller that may no longer act: a manager replica that may have
// lost its leader lease (paused past it, say) must not send what another replica now decides.
var ErrFenced = errors.New("fenced: this replica may no longer act on the cloud")

type fenceKey struct{}

// WithFence returns ctx carrying check, which providers call before every request they send, retries
// included (see CheckFence): a check made once before a provider method cannot stop the requests of a
// method that was paused half way.
func WithFence(ctx context.Context, check func() error) context.Context {
	return context.WithValue(ctx, fenceKey{}, check)
}

// CheckFence returns an error wrapping ErrFenced when ctx's fence refuses; nil without a fence.
func CheckFence(ctx context.Context) error {
	check, ok := ctx.Value(fenceKey{}).(func() error)
	if !ok {
		return nil
	}
	if err := check(); err != nil {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	return nil
}
