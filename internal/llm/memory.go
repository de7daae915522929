package llm

import (
	"container/list"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// MaxMemoryMessageBytes caps the text Memory keeps of one message; longer text is cut (at a rune
// boundary) so that one runaway answer cannot make every later request huge.
const MaxMemoryMessageBytes = 16 << 10

// ImagePlaceholder stands in Memory for the images of a message: images are sent to the model
// once, with the message that carried them, and not kept.
const ImagePlaceholder = "[image]"

// Memory keeps the recent conversation of each customer: the last turns (a user message and the
// answer to it) of at most customers customers, the least recently active dropped first, and
// forgets a customer after ttl without activity. It is safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	turns     int
	customers int
	ttl       time.Duration
	now       func() time.Time
	lru       *list.List // of *memEntry, most recently active first
	byKey     map[string]*list.Element
}

type memEntry struct {
	key  string
	seen time.Time
	msgs []Message // user, assistant, user, assistant, …
}

// MemoryOption configures a Memory.
type MemoryOption func(*Memory) error

// WithMemoryClock sets the clock that drives the TTL (tests; default time.Now).
func WithMemoryClock(now func() time.Time) MemoryOption {
	return func(m *Memory) error {
		if now == nil {
			return errors.New("llm: WithMemoryClock(nil)")
		}
		m.now = now
		return nil
	}
}

// NewMemory returns a Memory of the last turns turns per customer (1..1000), for at most
// customers customers (1..10 000 000), each forgotten after ttl (> 0) without activity.
func NewMemory(turns, customers int, ttl time.Duration, opts ...MemoryOption) (*Memory, error) {
	if turns < 1 || turns > 1000 {
		return nil, fmt.Errorf("llm: NewMemory: turns %d, want 1..1000", turns)
	}
	if customers < 1 || customers > 10_000_000 {
		return nil, fmt.Errorf("llm: NewMemory: customers %d, want 1..10000000", customers)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("llm: NewMemory: ttl %s, want > 0", ttl)
	}
	m := &Memory{turns: turns, customers: customers, ttl: ttl, now: time.Now, lru: list.New(),
		byKey: make(map[string]*list.Element)}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// History returns a copy of key's remembered messages, oldest first, alternating user and
// assistant (nil if none, or if they expired). It counts as activity.
func (m *Memory) History(key string) []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expire(now)
	el := m.byKey[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*memEntry)
	e.seen = now
	m.lru.MoveToFront(el)
	return append([]Message(nil), e.msgs...)
}

// AddTurn remembers one exchange of key: the user's message and the answer. Images are not kept
// (ImagePlaceholder marks where they were) and text is cut to MaxMemoryMessageBytes. The oldest
// turns beyond the limit, and the least recently active customers beyond theirs, are dropped.
func (m *Memory) AddTurn(key string, user, assistant Message) {
	user, assistant = remembered(user), remembered(assistant)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.expire(now)
	var e *memEntry
	if el := m.byKey[key]; el != nil {
		e = el.Value.(*memEntry)
		m.lru.MoveToFront(el)
	} else {
		e = &memEntry{key: key}
		m.byKey[key] = m.lru.PushFront(e)
		for m.lru.Len() > m.customers {
			m.remove(m.lru.Back())
		}
	}
	e.seen = now
	e.msgs = append(e.msgs, user, assistant)
	if over := len(e.msgs) - 2*m.turns; over > 0 {
		e.msgs = append(e.msgs[:0:0], e.msgs[over:]...)
	}
}

// Forget drops what is remembered of key.
func (m *Memory) Forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el := m.byKey[key]; el != nil {
		m.remove(el)
	}
}

// Len is the number of customers remembered (some may have expired without being dropped yet).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// expire drops the customers inactive for longer than the TTL: they are at the back.
func (m *Memory) expire(now time.Time) {
	for el := m.lru.Back(); el != nil; el = m.lru.Back() {
		if now.Sub(el.Value.(*memEntry).seen) <= m.ttl {
			return
		}
		m.remove(el)
	}
}

func (m *Memory) remove(el *list.Element) {
	delete(m.byKey, el.Value.(*memEntry).key)
	m.lru.Remove(el)
}

func remembered(msg Message) Message {
	out := Message{Role: msg.Role, Content: truncate(msg.Content, MaxMemoryMessageBytes)}
	if len(msg.Images) > 0 {
		out.Content = strings.TrimSpace(strings.Repeat(ImagePlaceholder+" ", len(msg.Images)) + out.Content)
	}
	return out
}

// truncate cuts s to at most n bytes at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}
