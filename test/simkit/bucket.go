package simkit

import "time"

// Bucket is the size of a throttling token bucket: Capacity requests at once, refilled at RefillPerSecond.
type Bucket struct {
	Capacity        float64
	RefillPerSecond float64
}

// TokenBucket is a Bucket in use, full at first. Not safe for concurrent use: the simulator's lock
// guards it.
type TokenBucket struct {
	Bucket
	tokens float64
	last   time.Time
}

// NewTokenBucket is a full bucket of size b.
func NewTokenBucket(b Bucket) *TokenBucket { return &TokenBucket{Bucket: b, tokens: b.Capacity} }

// Take refills the bucket for the time since the last call and takes a token; when there is none it
// returns false and how long until there is one.
func (b *TokenBucket) Take(now time.Time) (bool, time.Duration) {
	if !b.last.IsZero() {
		b.tokens = min(b.Capacity, b.tokens+now.Sub(b.last).Seconds()*b.RefillPerSecond)
	}
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / b.RefillPerSecond * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// Allow takes a token if there is one.
func (b *TokenBucket) Allow(now time.Time) bool {
	ok, _ := b.Take(now)
	return ok
}
