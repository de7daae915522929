package kf

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultLimitNotice is what LimitCustomers answers, once, to a customer who goes over the limit.
const DefaultLimitNotice = "您发送消息太频繁了，请稍后再试。"

// DefaultLimitMaxCustomers bounds how many customers' buckets LimitCustomers keeps.
const DefaultLimitMaxCustomers = 100_000

// limitPruneEvery is how many messages pass between two prunings of idle, refilled buckets;
// limitIdle is how long a bucket must have been unused to be pruned.
const (
	limitPruneEvery = 256
	limitIdle       = time.Minute
)

// LimitCustomersOption configures LimitCustomers. A nil option is ignored.
type LimitCustomersOption func(*customerLimitConfig) error

type customerLimitConfig struct {
	notice    string
	customers int
	now       func() time.Time
}

// WithLimitNotice sets the text sent, once, when a customer goes over the limit (default
// DefaultLimitNotice). An empty text sends nothing: messages over the limit are dropped
// silently.
func WithLimitNotice(text string) LimitCustomersOption {
	return func(c *customerLimitConfig) error { c.notice = text; return nil }
}

// WithLimitMaxCustomers bounds how many customers' buckets are kept (default
// DefaultLimitMaxCustomers). Past it, the least recently active customer's bucket is dropped:
// that customer starts again with a full bucket.
func WithLimitMaxCustomers(n int) LimitCustomersOption {
	return func(c *customerLimitConfig) error {
		if n < 1 {
			return invalidf("WithLimitMaxCustomers(%d): want ≥ 1", n)
		}
		c.customers = n
		return nil
	}
}

// WithLimitClock sets the clock the buckets fill by (tests; default time.Now).
func WithLimitClock(now func() time.Time) LimitCustomersOption {
	return func(c *customerLimitConfig) error {
		if now == nil {
			return invalidf("WithLimitClock(nil)")
		}
		c.now = now
		return nil
	}
}

// LimitCustomers returns middleware that lets each customer (per kf account) through at limit messages
// per second, with bursts of up to burst (a token bucket of golang.org/x/time/rate). The first
// message over the limit is answered with the notice (WithLimitNotice); further ones are
// dropped without a reply until the customer is within the limit again. A dropped message is
// done: its handler never runs. Events and human servicers' messages are not limited. With
// WithBurstWindow, a burst is one handler call and counts as one message.
//
// A rerun of a message (a retry, a replay after a crash) is judged as it was the first time, so a
// handler that fails transiently is not locked out by its own reruns. Buckets that are full again
// and unused for a minute are pruned, and at most WithLimitMaxCustomers are kept. The buckets live
// in this process: with several replicas, each limits the customers of the accounts it holds.
//
// limit must be > 0 (rate.Inf lets everything through) and burst ≥ 1; otherwise the error wraps
// ErrInvalidArgument.
func LimitCustomers(limit rate.Limit, burst int, opts ...LimitCustomersOption) (Middleware, error) {
	if !(limit > 0) {
		return nil, invalidf("LimitCustomers: limit %v: want > 0", limit)
	}
	if burst < 1 {
		return nil, invalidf("LimitCustomers: burst %d: want ≥ 1", burst)
	}
	c := customerLimitConfig{notice: DefaultLimitNotice, customers: DefaultLimitMaxCustomers, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	l := &customerLimiter{cfg: c, limit: limit, burst: burst, lru: list.New(), byKey: make(map[string]*list.Element)}
	return l.middleware, nil
}

// customerLimiter holds the buckets of LimitCustomers, least recently active last.
type customerLimiter struct {
	cfg   customerLimitConfig
	limit rate.Limit
	burst int

	mu    sync.Mutex
	lru   *list.List // of *bucket
	byKey map[string]*list.Element
	ops   int
}

type bucket struct {
	key      string
	lim      *rate.Limiter
	last     time.Time
	admitted string // msgid of the last message let through: a rerun of it passes again
	noticed  string // msgid the notice answered: a rerun of it answers again (the reply record replays it)
	quiet    bool   // over the limit and noticed: drop until a message is let through
}

type verdict int

const (
	admit verdict = iota
	notice
	drop
)

func (l *customerLimiter) middleware(next Handler) Handler {
	return func(ctx context.Context, m *Message, r Replier) error {
		if m.Origin != OriginCustomer || m.Event != nil {
			return next(ctx, m, r)
		}
		switch l.decide(customerKey(m.OpenKfID, customerOf(m)), m.MsgID) {
		case admit:
			return next(ctx, m, r)
		case notice:
			return r.Text(ctx, l.cfg.notice)
		}
		return nil
	}
}

func (l *customerLimiter) decide(key, msgID string) verdict {
	now := l.cfg.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops++
	if l.ops%limitPruneEvery == 0 {
		l.prune(now)
	}
	var b *bucket
	if el := l.byKey[key]; el != nil {
		b = el.Value.(*bucket)
		l.lru.MoveToFront(el)
	} else {
		b = &bucket{key: key, lim: rate.NewLimiter(l.limit, l.burst)}
		l.byKey[key] = l.lru.PushFront(b)
		for l.lru.Len() > l.cfg.customers {
			l.remove(l.lru.Back())
		}
	}
	b.last = now
	switch {
	case msgID != "" && msgID == b.admitted:
		return admit
	case msgID != "" && msgID == b.noticed:
		return notice
	case b.lim.AllowN(now, 1):
		b.admitted, b.quiet = msgID, false
		return admit
	case b.quiet || l.cfg.notice == "":
		return drop
	}
	b.quiet, b.noticed = true, msgID
	return notice
}

// prune drops buckets unused for limitIdle that are full again (the same as a new bucket).
// l.mu held.
func (l *customerLimiter) prune(now time.Time) {
	for el := l.lru.Back(); el != nil; {
		prev := el.Prev()
		b := el.Value.(*bucket)
		if now.Sub(b.last) < limitIdle {
			return // the rest are more recent
		}
		if b.lim.TokensAt(now) >= float64(l.burst) {
			l.remove(el)
		}
		el = prev
	}
}

func (l *customerLimiter) remove(el *list.Element) {
	delete(l.byKey, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// size is the number of buckets held (tests).
func (l *customerLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
