package kf

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// Channel.Use wraps OnMessage and OnEvent handlers, first given outermost, whether it is called
// before or after the handlers are set.
func TestChannelUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	var seen []string
	mark := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, m *Message, r Replier) error {
				mu.Lock()
				seen = append(seen, name+":"+string(m.MsgType))
				mu.Unlock()
				return next(ctx, m, r)
			}
		}
	}
	e.ch.Use(mark("a"))
	e.ch.OnMessage(echo)
	e.ch.OnEvent(func(context.Context, *Message, Replier) error { return nil })
	e.ch.Use(nil, mark("b"))
	e.srv.AddText("ann", "hi")
	e.srv.AddEvent("msg_send_fail", map[string]any{"external_userid": "ann", "fail_msgid": "x", "fail_type": 4})
	e.notify()
	e.waitSent("ann", 1)
	e.settle()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"a:text", "b:text", "a:event", "b:event"}, seen)
}

// Logging writes one line per turn, without the content or the customer.
func TestLoggingMiddleware(t *testing.T) {
	t.Parallel()
	var logs syncLog
	e := newEnv(t)
	e.ch.Use(Logging(logs.logger()))
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text.Content == "fail" {
			return errors.New("boom")
		}
		return r.Text(ctx, "ok")
	})
	e.srv.AddMenuClick("secret-customer", "m1", "private words")
	e.srv.AddText("secret-customer", "fail")
	e.notify()
	e.waitSent("secret-customer", 1)
	e.settle()
	out := logs.String()
	assert.Contains(t, out, `level=INFO msg="wxkf: turn"`)
	assert.Contains(t, out, "menu_id=m1")
	assert.Contains(t, out, "sent=1")
	assert.Contains(t, out, `level=WARN msg="wxkf: turn"`)
	assert.Contains(t, out, "err=boom")
	assert.NotContains(t, out, "private words")
	assert.NotContains(t, out, "secret-customer")
	assert.Nil(t, Logging(nil)(nil), "a nil logger: no middleware")
}

// LimitCustomers lets the burst through, answers the first message over the limit once, drops the
// rest while over, and lets the customer through again once the bucket refills. Other customers
// and events are not affected.
func TestLimitCustomers(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	mw, err := LimitCustomers(rate.Every(10*time.Second), 2, WithLimitClock(clock), WithLimitNotice("慢一点"), nil)
	require.NoError(t, err)
	var handled atomic.Int32
	h := mw(func(ctx context.Context, m *Message, r Replier) error { handled.Add(1); return r.Text(ctx, "answer") })
	turn := func(user, id string) []string {
		m := &Message{MsgID: id, OpenKfID: "wk", ExternalUserID: user, Origin: OriginCustomer, MsgType: MsgTypeText,
			Body: Body{Text: &Text{Content: "hi"}}}
		rec, err := NewRecorder(m)
		require.NoError(t, err)
		require.NoError(t, h(context.Background(), m, rec))
		return rec.Texts()
	}
	assert.Equal(t, []string{"answer"}, turn("ann", "1"))
	assert.Equal(t, []string{"answer"}, turn("ann", "2"))
	assert.Equal(t, []string{"慢一点"}, turn("ann", "3"), "over the limit: answered once")
	assert.Empty(t, turn("ann", "4"), "then quiet")
	assert.Equal(t, []string{"慢一点"}, turn("ann", "3"), "a rerun of the noticed message replays its notice")
	assert.Equal(t, []string{"answer"}, turn("bob", "5"), "another customer")
	advance(10 * time.Second)
	assert.Equal(t, []string{"answer"}, turn("ann", "6"), "refilled")
	assert.Equal(t, []string{"answer"}, turn("ann", "6"), "a rerun of an admitted message is admitted")
	assert.Equal(t, []string{"慢一点"}, turn("ann", "7"), "over again: a new notice")
	assert.EqualValues(t, 5, handled.Load())

	ev := &Message{MsgID: "e", OpenKfID: "wk", Origin: OriginSystem, MsgType: MsgTypeEvent, Body: Body{Event: &Event{EventType: EventMsgSendFail, ExternalUserID: "ann"}}}
	rec, _ := NewRecorder(ev)
	require.NoError(t, h(context.Background(), ev, rec))
	assert.EqualValues(t, 6, handled.Load(), "events pass")

	for _, bad := range []func() error{
		func() error { _, err := LimitCustomers(0, 1); return err },
		func() error { _, err := LimitCustomers(1, 0); return err },
		func() error { _, err := LimitCustomers(1, 1, WithLimitMaxCustomers(0)); return err },
		func() error { _, err := LimitCustomers(1, 1, WithLimitClock(nil)); return err },
	} {
		assert.ErrorIs(t, bad(), ErrInvalidArgument)
	}
}

// The buckets are bounded and pruned once full again and idle.
func TestRateLimitBuckets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := &customerLimiter{cfg: customerLimitConfig{customers: 100, now: func() time.Time { return now }}, limit: rate.Every(time.Second),
		burst: 3, lru: list.New(), byKey: map[string]*list.Element{}}
	for i := range 1000 {
		l.decide(fmt.Sprint("c", i), "m")
	}
	assert.Equal(t, 100, l.size(), "bounded")
	now = now.Add(limitIdle + 3*time.Second) // every bucket full again and idle
	for i := range limitPruneEvery {
		l.decide("fresh", fmt.Sprint("m", i))
	}
	assert.LessOrEqual(t, l.size(), 2, "pruned")
}

// A rate-limited handler that fails transiently is rerun, not locked out by its own reruns, and
// the customer gets one answer.
func TestRateLimitWithRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry)
	mw, err := LimitCustomers(rate.Every(time.Hour), 1)
	require.NoError(t, err)
	e.ch.Use(mw)
	var runs atomic.Int32
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if runs.Add(1) < 3 {
			return Retry(errors.New("model busy"))
		}
		return r.Text(ctx, "answer to "+m.Text.Content)
	})
	e.srv.AddText("ann", "one")
	e.notify()
	e.waitTexts("ann", []string{"answer to one"}, 5*time.Second)
	e.srv.AddText("ann", "two")
	e.notify()
	e.waitTexts("ann", []string{"answer to one", DefaultLimitNotice}, 5*time.Second)
	e.settle()
	assert.EqualValues(t, 3, runs.Load())
}

// A panic anywhere in the chain goes to the dead-letter hook, logged with its stack.
func TestPanicIsDeadLetteredWithStack(t *testing.T) {
	t.Parallel()
	var logs syncLog
	e := newEnv(t, WithChannelLogger(logs.logger()))
	dead := make(chan error, 1)
	e.ch.OnDeadLetter(func(_ context.Context, _ *Message, err error) { dead <- err })
	rt := NewRouter()
	rt.OnKeyword("crash", func(context.Context, *Message, Replier) error { panic("route exploded") })
	e.ch.Use(Logging(logs.logger()))
	e.ch.OnMessage(rt.Handle)
	e.srv.AddText("ann", "crash")
	e.notify()
	select {
	case err := <-dead:
		assert.ErrorContains(t, err, "route exploded")
	case <-time.After(5 * time.Second):
		t.Fatal("no dead letter")
	}
	e.settle()
	assert.True(t, strings.Contains(logs.String(), "router_test") || strings.Contains(logs.String(), "middleware_test.go"),
		"the stack is logged: %s", logs.String())
}

// syncLog is a log that tests can read while the Channel writes to it.
type syncLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *syncLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
