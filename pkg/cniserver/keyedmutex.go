package cniserver

import (
	"context"
	"sync"
)

// keyedMutex serializes work per key (a sandbox's container ID) and forgets a key once nobody holds or
// waits for it, so it stays as small as the number of requests in flight.
type keyedMutex struct {
	mu    sync.Mutex
	slots map[string]*keySlot
}

type keySlot struct {
	token chan struct{} // holds one token while the key is free
	users int           // holders and waiters
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{slots: map[string]*keySlot{}} }

// lock waits for key until ctx ends; the returned func releases it.
func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	slot, ok := k.slots[key]
	if !ok {
		slot = &keySlot{token: make(chan struct{}, 1)}
		slot.token <- struct{}{}
		k.slots[key] = slot
	}
	slot.users++
	k.mu.Unlock()

	select {
	case <-slot.token:
		return func() { slot.token <- struct{}{}; k.release(key, slot) }, nil
	case <-ctx.Done():
		k.release(key, slot)
		return nil, ctx.Err()
	}
}

func (k *keyedMutex) release(key string, slot *keySlot) {
	k.mu.Lock()
	defer k.mu.Unlock()
	slot.users--
	if slot.users == 0 {
		delete(k.slots, key)
	}
}
