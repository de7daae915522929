package kf

import (
	"fmt"
	"sync"
	"time"
)

// quotaBook counts, per customer, the sends since the customer's latest message (§6: at most 5,
// within 48 h; a new customer message resets the count).
//
// WeCom counts from when the message reached it; the Channel learns of the message only when it
// pulls it, and may have sent in between: those sends count against the new message at WeCom too,
// so a reset keeps the sends made after the message's send_time. send_time has one-second
// resolution, and the Channel's clock may differ a little from WeCom's (an NTP-synchronised clock
// is within a few milliseconds), so a send made in the message's second, or within sendTimeMargin
// before it, cannot be ordered against it; it is counted against the newer window. That can cost the customer a reply slot, but never makes WeCom answer 95001.
// Every customer message of a page is observed before any of them is dispatched, so a burst never
// earns replies beyond five.
type quotaBook struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*window
	ops int
}

type window struct {
	anchor     string    // msgid of the customer's latest message
	anchorTime time.Time // its send_time
	sent       map[string]time.Time
	last       time.Time // the latest activity (observe or send), for pruning
}

// Quota rules (§6).
const (
	quotaPerMessage = 5
	quotaWindow     = 48 * time.Hour
	// sendTimeMargin: sends made this long before a new message's send_time second (or later)
	// count against the new message's window: room for the clocks of WeCom and the Channel to
	// differ.
	sendTimeMargin = 250 * time.Millisecond
	// pruneEvery is how many quota operations pass between two prunings of stale windows.
	pruneEvery = 1024
)

func newQuotaBook(now func() time.Time) *quotaBook {
	return &quotaBook{now: now, m: make(map[string]*window)}
}

func (q *quotaBook) window(key string) *window {
	w := q.m[key]
	if w == nil {
		w = &window{sent: make(map[string]time.Time, quotaPerMessage)}
		q.m[key] = w
	}
	return w
}

// tick counts an operation and prunes now and then. q.mu held.
func (q *quotaBook) tick() {
	q.ops++
	if q.ops%pruneEvery == 0 {
		q.prune()
	}
}

// observe notes a customer message: if it is newer than the window's anchor, the count restarts
// from the sends made after it (or too close to it to tell).
func (q *quotaBook) observe(m *Message) {
	key := customerKey(m.OpenKfID, m.ExternalUserID)
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.window(key)
	if w.anchor != m.MsgID && !m.SendTime.Before(w.anchorTime) {
		w.anchor, w.anchorTime = m.MsgID, m.SendTime
		cut := m.SendTime.Truncate(time.Second).Add(-sendTimeMargin)
		for id, at := range w.sent {
			if at.Before(cut) {
				delete(w.sent, id)
			}
		}
	}
	w.last = q.now()
	q.tick()
}

// prune drops windows with no activity for 48 h: nothing can be sent in them anyway (a customer
// who writes again starts a new window). q.mu held.
func (q *quotaBook) prune() {
	cut := q.now().Add(-quotaWindow)
	for k, w := range q.m {
		if w.last.Before(cut) && w.anchorTime.Before(cut) {
			delete(q.m, k)
		}
	}
}

// size returns the number of windows held (tests).
func (q *quotaBook) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.m)
}

func (q *quotaBook) left(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.m[key]; w != nil {
		return max(quotaPerMessage-len(w.sent), 0)
	}
	return quotaPerMessage
}

func (q *quotaBook) expired(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.m[key]
	return w != nil && !w.anchorTime.IsZero() && q.now().Sub(w.anchorTime) > quotaWindow
}

// take counts the send id against the window; false when the quota is used up. Taking an id
// already counted is free (the same client msgid is the same message).
func (q *quotaBook) take(key, id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tick()
	w := q.window(key)
	if _, ok := w.sent[id]; ok {
		return true
	}
	if len(w.sent) >= quotaPerMessage {
		return false
	}
	now := q.now()
	w.sent[id] = now
	w.last = now
	return true
}

func (q *quotaBook) release(key, id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.m[key]; w != nil {
		delete(w.sent, id)
	}
}

// exhaust records that WeCom says the quota is used (95001).
func (q *quotaBook) exhaust(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.window(key)
	now := q.now()
	for i := 0; len(w.sent) < quotaPerMessage; i++ {
		w.sent[fmt.Sprintf("\x00wecom-%d", i)] = now
	}
	w.last = now
}
