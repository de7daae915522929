package main

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"
)

// maxTurnBytes caps what memory keeps of one message, so that one runaway answer cannot make every
// later request huge.
const maxTurnBytes = 16 << 10

// Turn is one exchange: the customer's message (images replaced by a placeholder) and the answer.
type Turn struct {
	User      string `json:"u"`
	Assistant string `json:"a"`
}

// Memory keeps each customer's recent conversation for the model: the last turns of a key
// (open_kfid/external_userid), oldest first. The Channel hands one customer's messages to one
// handler call at a time (and, with replicas, one account to one replica at a time), so a key is
// never written concurrently.
type Memory interface {
	History(ctx context.Context, key string) ([]Turn, error)
	Add(ctx context.Context, key string, t Turn) error
}

// clip cuts s to maxTurnBytes at a rune boundary.
func clip(s string) string {
	if len(s) <= maxTurnBytes {
		return s
	}
	n := maxTurnBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// localMemory is Memory in this process: the last turns of at most customers keys, the least
// recently active dropped first, each forgotten after ttl without activity. One replica only.
type localMemory struct {
	turns, customers int
	ttl              time.Duration
	now              func() time.Time

	mu    sync.Mutex
	lru   *list.List // of *memEntry, most recently active first
	byKey map[string]*list.Element
}

type memEntry struct {
	key   string
	seen  time.Time
	turns []Turn
}

func newLocalMemory(turns, customers int, ttl time.Duration) *localMemory {
	return &localMemory{turns: turns, customers: customers, ttl: ttl, now: time.Now, lru: list.New(),
		byKey: map[string]*list.Element{}}
}

func (m *localMemory) History(_ context.Context, key string) ([]Turn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	el := m.byKey[key]
	if el == nil {
		return nil, nil
	}
	e := el.Value.(*memEntry)
	e.seen = m.now()
	m.lru.MoveToFront(el)
	return append([]Turn(nil), e.turns...), nil
}

func (m *localMemory) Add(_ context.Context, key string, t Turn) error {
	t = Turn{User: clip(t.User), Assistant: clip(t.Assistant)}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	el := m.byKey[key]
	if el == nil {
		el = m.lru.PushFront(&memEntry{key: key})
		m.byKey[key] = el
		for m.lru.Len() > m.customers {
			m.remove(m.lru.Back())
		}
	}
	e := el.Value.(*memEntry)
	e.seen = m.now()
	m.lru.MoveToFront(el)
	e.turns = append(e.turns, t)
	if over := len(e.turns) - m.turns; over > 0 {
		e.turns = append(e.turns[:0:0], e.turns[over:]...)
	}
	return nil
}

// expire drops the keys inactive for longer than the TTL: they are at the back. m.mu held.
func (m *localMemory) expire() {
	now := m.now()
	for el := m.lru.Back(); el != nil && now.Sub(el.Value.(*memEntry).seen) > m.ttl; el = m.lru.Back() {
		m.remove(el)
	}
}

func (m *localMemory) remove(el *list.Element) {
	delete(m.byKey, el.Value.(*memEntry).key)
	m.lru.Remove(el)
}

// redisMemory is Memory in Redis, shared by replicas: a list per key holding the last turns as
// JSON, expiring ttl after its last turn.
type redisMemory struct {
	c      goredis.UniversalClient
	prefix string
	turns  int
	ttl    time.Duration
}

func newRedisMemory(c goredis.UniversalClient, prefix string, turns int, ttl time.Duration) *redisMemory {
	return &redisMemory{c: c, prefix: prefix, turns: turns, ttl: ttl}
}

func (m *redisMemory) History(ctx context.Context, key string) ([]Turn, error) {
	raw, err := m.c.LRange(ctx, m.prefix+key, 0, -1).Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("memory: %w", err)
	}
	out := make([]Turn, 0, len(raw))
	for _, r := range raw {
		var t Turn
		if json.Unmarshal([]byte(r), &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

func (m *redisMemory) Add(ctx context.Context, key string, t Turn) error {
	b, err := json.Marshal(Turn{User: clip(t.User), Assistant: clip(t.Assistant)})
	if err != nil {
		return err
	}
	k := m.prefix + key
	_, err = m.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, k, b)
		p.LTrim(ctx, k, int64(-m.turns), -1)
		p.Expire(ctx, k, m.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	return nil
}
