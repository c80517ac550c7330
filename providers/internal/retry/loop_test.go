package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/egressgw/egressgw/providers"
)

var errSlowDown = errors.New("SlowDown")

func throttled(err error) error { return fmt.Errorf("cloud: %w: %w", providers.ErrThrottled, err) }

// TestGiveUpKeepsTheCloudErrorAndTheDeadline: a call throttled until its deadline reports both why the
// cloud refused and that the deadline ended the retries.
func TestGiveUpKeepsTheCloudErrorAndTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	tries := 0
	_, err := Do(ctx, Policy{Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}},
		Call{Name: "test:Call", Classify: throttled}, func(context.Context) (int, error) { tries++; return 0, errSlowDown })
	if !errors.Is(err, providers.ErrThrottled) || !errors.Is(err, errSlowDown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the throttled cloud error and the deadline", err)
	}
	if tries < 2 {
		t.Fatalf("tried %d times, want retries", tries)
	}
}

// TestRetryAfterOverridesTheBackoff: with a backoff far beyond the deadline, the call still succeeds
// because the cloud's requested wait is short.
func TestRetryAfterOverridesTheBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pol := Policy{Backoff: Backoff{Base: time.Hour, Max: time.Hour}, RetryAfter: func(error) time.Duration { return time.Millisecond }}
	tries := 0
	got, err := Do(ctx, pol, Call{Name: "test:Call", Classify: throttled}, func(context.Context) (string, error) {
		if tries++; tries < 3 {
			return "", errSlowDown
		}
		return "done", nil
	})
	if err != nil || got != "done" || tries != 3 {
		t.Fatalf("got %q, %v after %d tries; want done after 3", got, err, tries)
	}
}

// TestPermanentErrorsAreNotRetried: what the classification calls permanent ends the call at once.
func TestPermanentErrorsAreNotRetried(t *testing.T) {
	tries := 0
	_, err := Do(context.Background(), Policy{Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}},
		Call{Name: "test:Call", Classify: func(err error) error { return fmt.Errorf("%w: %w", providers.ErrPermanent, err) }},
		func(context.Context) (int, error) { tries++; return 0, errSlowDown })
	if !errors.Is(err, providers.ErrPermanent) || tries != 1 {
		t.Fatalf("err = %v after %d tries, want ErrPermanent after 1", err, tries)
	}
}

// TestClientSideLimitWithoutAnAnswerNamesTheCall: refused by its own bucket before the cloud answered,
// the call is named and reported throttled.
func TestClientSideLimitWithoutAnAnswerNamesTheCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	l := Limit{Burst: 1, PerSecond: 0.001}.Limiter()
	l.Allow() // the only token
	_, err := Do(ctx, Policy{}, Call{Name: "test:Call", Limiter: l, Classify: throttled},
		func(context.Context) (int, error) { return 0, nil })
	if !errors.Is(err, providers.ErrThrottled) || !errors.Is(err, context.DeadlineExceeded) || err.Error()[:10] != "test:Call:" {
		t.Fatalf("err = %v, want test:Call throttled by the client-side limit", err)
	}
}

// TestAFencedCallSendsNothing: once the context's fence refuses, no further try is made, not even the
// retry of a throttled one, and the error says it was fenced.
func TestAFencedCallSendsNothing(t *testing.T) {
	var fenced bool
	ctx := providers.WithFence(context.Background(), func() error {
		if fenced {
			return errors.New("lease lost")
		}
		return nil
	})
	tries := 0
	_, err := Do(ctx, Policy{Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}}, Call{Name: "test:Call", Classify: throttled},
		func(context.Context) (int, error) { tries++; fenced = true; return 0, errSlowDown })
	if !errors.Is(err, providers.ErrFenced) || tries != 1 {
		t.Fatalf("err = %v after %d tries, want ErrFenced after 1", err, tries)
	}
}
