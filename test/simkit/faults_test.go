package simkit

import (
	"slices"
	"testing"
	"time"
)

// TestInjectionsFireInOrderKeyFirst: a call meets the faults queued for its key before those for every
// call, each for its count, earlier ones first.
func TestInjectionsFireInOrderKeyFirst(t *testing.T) {
	var q Injections[string]
	q.Add("", "any", 1)
	q.Add("Get", "first", 2)
	q.Add("Get", "second", 1)
	var got []string
	for range 5 {
		f, ok := q.Next("Get")
		if !ok {
			f = "-"
		}
		got = append(got, f)
	}
	if want := []string{"first", "first", "second", "any", "-"}; !slices.Equal(got, want) {
		t.Fatalf("faults %v, want %v", got, want)
	}
}

// TestTokenBucketRefillsAndSaysWhen: a drained bucket refuses and says how long until the next token.
func TestTokenBucketRefillsAndSaysWhen(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewTokenBucket(Bucket{Capacity: 2, RefillPerSecond: 4})
	b.Take(now)
	b.Take(now)
	if ok, wait := b.Take(now); ok || wait != 250*time.Millisecond {
		t.Fatalf("drained bucket: ok=%v wait=%v, want refused for 250ms", ok, wait)
	}
	if !b.Allow(now.Add(250 * time.Millisecond)) {
		t.Fatal("no token after one refill interval")
	}
}
