package kf

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRateLimitNotice is what RateLimit answers, once, to a customer who goes over the limit.
const DefaultRateLimitNotice = "您发送消息太频繁了，请稍后再试。"

// DefaultRateLimitCustomers bounds how many customers' buckets RateLimit keeps.
const DefaultRateLimitCustomers = 100_000

// rateLimitPruneEvery is how many messages pass between two prunings of idle, refilled buckets;
// rateLimitIdle is how long a bucket must have been unused to be pruned.
const (
	rateLimitPruneEvery = 256
	rateLimitIdle       = time.Minute
)

// RateLimitOption configures RateLimit. A nil option is ignored.
type RateLimitOption func(*rateLimitConfig) error

type rateLimitConfig struct {
	notice    string
	customers int
	now       func() time.Time
}

// WithRateLimitNotice sets the text sent, once, when a customer goes over the limit (default
// DefaultRateLimitNotice). An empty text sends nothing: messages over the limit are dropped
// silently.
func WithRateLimitNotice(text string) RateLimitOption {
	return func(c *rateLimitConfig) error { c.notice = text; return nil }
}

// WithRateLimitCustomers bounds how many customers' buckets are kept (default
// DefaultRateLimitCustomers). Past it, the least recently active customer's bucket is dropped:
// that customer starts again with a full bucket.
func WithRateLimitCustomers(n int) RateLimitOption {
	return func(c *rateLimitConfig) error {
		if n < 1 {
			return invalidf("WithRateLimitCustomers(%d): want ≥ 1", n)
		}
		c.customers = n
		return nil
	}
}

// WithRateLimitClock sets the clock the buckets fill by (tests; default time.Now).
func WithRateLimitClock(now func() time.Time) RateLimitOption {
	return func(c *rateLimitConfig) error {
		if now == nil {
			return invalidf("WithRateLimitClock(nil)")
		}
		c.now = now
		return nil
	}
}

// RateLimit returns middleware that lets each customer (per kf account) through at limit messages
// per second, with bursts of up to burst (a token bucket of golang.org/x/time/rate). The first
// message over the limit is answered with the notice (WithRateLimitNotice); further ones are
// dropped without a reply until the customer is within the limit again. A dropped message is
// done: its handler never runs. Events and human servicers' messages are not limited.
//
// A rerun of a message (a retry, a replay after a crash) is judged as it was the first time, so a
// handler that fails transiently is not locked out by its own reruns. Buckets that are full again
// and unused for a minute are pruned, and at most WithRateLimitCustomers are kept. The buckets live
// in this process: with several replicas, each limits the customers of the accounts it holds.
//
// limit must be > 0 (rate.Inf lets everything through) and burst ≥ 1; otherwise the error wraps
// ErrInvalidArgument.
func RateLimit(limit rate.Limit, burst int, opts ...RateLimitOption) (Middleware, error) {
	if !(limit > 0) {
		return nil, invalidf("RateLimit: limit %v: want > 0", limit)
	}
	if burst < 1 {
		return nil, invalidf("RateLimit: burst %d: want ≥ 1", burst)
	}
	c := rateLimitConfig{notice: DefaultRateLimitNotice, customers: DefaultRateLimitCustomers, now: time.Now}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	l := &limiter{cfg: c, limit: limit, burst: burst, lru: list.New(), byKey: make(map[string]*list.Element)}
	return l.middleware, nil
}

// limiter holds the buckets of RateLimit, least recently active last.
type limiter struct {
	cfg   rateLimitConfig
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

func (l *limiter) middleware(next Handler) Handler {
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

func (l *limiter) decide(key, msgID string) verdict {
	now := l.cfg.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops++
	if l.ops%rateLimitPruneEvery == 0 {
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

// prune drops buckets unused for rateLimitIdle that are full again (the same as a new bucket).
// l.mu held.
func (l *limiter) prune(now time.Time) {
	for el := l.lru.Back(); el != nil; {
		prev := el.Prev()
		b := el.Value.(*bucket)
		if now.Sub(b.last) < rateLimitIdle {
			return // the rest are more recent
		}
		if b.lim.TokensAt(now) >= float64(l.burst) {
			l.remove(el)
		}
		el = prev
	}
}

func (l *limiter) remove(el *list.Element) {
	delete(l.byKey, el.Value.(*bucket).key)
	l.lru.Remove(el)
}

// size is the number of buckets held (tests).
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
