package cniserver

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestKeyedMutexForgetsIdleKeys(t *testing.T) {
	k := newKeyedMutex()
	unlock, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock = %v, want deadline", err)
	}
	unlock()
	if len(k.slots) != 0 {
		t.Fatalf("slots = %d after release", len(k.slots))
	}
}
