// Package lockedmap reads and writes the providers' caches (subnets, instance types, attachments), maps
// guarded by the provider's own mutex, one entry at a time.
package lockedmap

import "sync"

// Get reads m[key] under mu.
func Get[V any](mu *sync.Mutex, m map[string]V, key string) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := m[key]
	return v, ok
}

// Put writes m[key] under mu.
func Put[V any](mu *sync.Mutex, m map[string]V, key string, v V) {
	mu.Lock()
	defer mu.Unlock()
	m[key] = v
}

// Delete drops m[key] under mu.
func Delete[V any](mu *sync.Mutex, m map[string]V, key string) {
	mu.Lock()
	defer mu.Unlock()
	delete(m, key)
}
