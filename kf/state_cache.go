package kf

import (
	"sync"
	"time"
)

// stateCache remembers session states briefly, so that a burst of replies costs one
// service_state/get. session_status_change events, Handoff and 95018 answers update it. Each entry
// keeps when it was learned: the Replier trusts a state that forbids sending only for messages the
// customer sent before that, and looks again for anything newer (a session can come back to the
// bot without an event, e.g. moved by service_state/trans from another system).
type stateCache struct {
	mu sync.Mutex
	m  map[string]stateEntry
}

type stateEntry struct {
	st ServiceStateValue
	at time.Time
}

// Cache bounds.
const (
	// stateTTL bounds how stale a cached state may be; a human taking over within it still meets
	// 95018, which the Replier turns into a *ReplyError.
	stateTTL = 30 * time.Second
	// maxStates bounds the entries kept; the cache is cleared when it grows past it.
	maxStates = 100_000
)

func newStateCache() *stateCache { return &stateCache{m: make(map[string]stateEntry)} }

// get returns the cached state of key and when it was learned.
func (c *stateCache) get(key string, now time.Time) (ServiceStateValue, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) > stateTTL || now.Before(e.at) {
		return 0, time.Time{}, false
	}
	return e.st, e.at, true
}

func (c *stateCache) put(key string, st ServiceStateValue, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxStates {
		clear(c.m)
	}
	c.m[key] = stateEntry{st, now}
}

func (c *stateCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
