package kf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/wxkf/wxkf/kf/kftest"
)

// burstLog records the handler calls of a burst test: the texts (or msgtypes) of each call.
type burstLog struct {
	mu    sync.Mutex
	calls [][]string
}

func (l *burstLog) handler(ctx context.Context, m *Message, r Replier) error {
	msgs := m.Burst
	if msgs == nil {
		msgs = []*Message{m}
	}
	var got []string
	for _, x := range msgs {
		if x.Text != nil {
			got = append(got, x.Text.Content)
		} else {
			got = append(got, string(x.MsgType))
		}
	}
	l.mu.Lock()
	l.calls = append(l.calls, got)
	l.mu.Unlock()
	return r.Text(ctx, "re: "+strings.Join(got, " + "))
}

func (l *burstLog) get() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]string(nil), l.calls...)
}

// Three quick texts and an image, pulled in two pages, make one handler call that sees them all
// (the last one as m, all in m.Burst); a message after the window starts a new turn.
func TestBurstMergesAcrossPulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithBurstWindow(time.Second))
	var log burstLog
	e.ch.OnMessage(log.handler)
	e.srv.AddText("bea", "hi")
	e.srv.AddText("bea", "I have a question")
	e.notify()
	time.Sleep(300 * time.Millisecond) // a second pull
	e.srv.AddText("bea", "about my order")
	e.srv.AddImage("bea", testPNG(t))
	e.notify()
	e.waitTexts("bea", []string{"re: hi + I have a question + about my order + image"}, 10*time.Second)
	assert.Len(t, log.get(), 1, "one handler call")
	assert.EqualValues(t, 1, e.ch.Stats().Bursts)

	time.Sleep(1300 * time.Millisecond) // past the window, and a later second for the quota
	e.srv.AddText("bea", "thanks")
	e.notify()
	e.waitTexts("bea", []string{"re: hi + I have a question + about my order + image", "re: thanks"}, 10*time.Second)
	e.settle()
	assert.Equal(t, [][]string{{"hi", "I have a question", "about my order", "image"}, {"thanks"}}, log.get())
	assert.EqualValues(t, 5, e.ch.Stats().Handled, "every message of the burst is done")
}

// A crash in the middle of a burst's answer replays the whole burst, answers it once (the reply
// record covers the same messages), and never mixes two answers.
func TestBurstCrashReplaysOnce(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	px := newWecomProxy(t, srv.URL())
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	opts := []ChannelOption{WithBurstWindow(500 * time.Millisecond), fastRetry,
		WithClientOptions(WithBaseURL(px.URL()), WithRetry(1, time.Millisecond, time.Millisecond))}
	e.start(opts...)
	var runs sync.Map
	handler := func(ctx context.Context, m *Message, r Replier) error {
		n := len(m.Burst)
		tag, parts := taggedAnswer(3)
		runs.Store(tag, n)
		return r.Text(ctx, strings.Join(padParts(parts), "")) // three messages in one call
	}
	e.ch.OnMessage(handler)
	var sends int
	var mu sync.Mutex
	px.add(func(path string, _ []byte) (int, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if path == pathSend {
			sends++
			if sends >= 2 {
				return 502, "bad gateway", true // WeCom unreachable after the first part
			}
		}
		return 0, "", false
	})
	srv.AddText("cal", "one")
	srv.AddText("cal", "two")
	srv.AddText("cal", "three")
	e.notify()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return sends >= 2 }, 10*time.Second, time.Millisecond)
	e.crashAndRestart(opts...)
	px.clear()
	e.ch.OnMessage(handler)
	e.settleWithin(15 * time.Second)
	got := e.texts("cal")
	require.Len(t, got, 3, "the first run's three parts, once each: %q", got)
	tag := tagOf(got[0])
	for _, s := range got {
		assert.Equal(t, tag, tagOf(s), "one answer")
	}
	n, _ := runs.Load(tag)
	assert.Equal(t, 3, n, "the answer was to the burst of three")
	assert.EqualValues(t, 3, e.ch.Stats().Handled, "the three messages are done together")
}

// Without a burst window nothing waits and nothing is merged.
func TestNoBurstByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var log burstLog
	e.ch.OnMessage(log.handler)
	e.srv.AddText("dan", "a")
	e.srv.AddText("dan", "b")
	e.notify()
	e.waitTexts("dan", []string{"re: a", "re: b"}, 5*time.Second)
	assert.Equal(t, [][]string{{"a"}, {"b"}}, log.get())
}

// burstIDs returns the msgids a handler call answers: m.Burst's, or m's own.
func burstIDs(m *Message) []string {
	if m.Burst == nil {
		return []string{m.MsgID}
	}
	ids := make([]string, len(m.Burst))
	for i, x := range m.Burst {
		ids[i] = x.MsgID
	}
	return ids
}

// A burst's telemetry is as the package documentation ("Telemetry") says: each message counted
// received, one handler run recorded, one message span with the first message's msgid and the
// burst's size, linked to each message's pull with its msgid, the handler's spans under it.
func TestBurstTelemetry(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	e := newEnv(t, append(tel.options(), WithBurstWindow(300*time.Millisecond))...)
	kfid := e.srv.OpenKfID()
	var calls atomic.Int32
	app := tel.tp.Tracer("app")
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		calls.Add(1)
		_, span := app.Start(ctx, "app.work")
		defer span.End()
		return r.Text(ctx, fmt.Sprintf("re: %d messages", len(m.Burst)))
	})
	ids := []string{e.srv.AddText("eli", "one"), e.srv.AddText("eli", "two"), e.srv.AddText("eli", "three")}
	e.notify()
	e.waitHandled(3)
	require.EqualValues(t, 1, calls.Load(), "one handler call")
	require.EqualValues(t, 1, e.ch.Stats().Bursts)
	require.EqualValues(t, 3, e.ch.Stats().Handled)

	m := tel.collect()
	kf := keyOpenKfID.String(kfid)
	assert.EqualValues(t, 3, m.sum("wxkf.message.count", kf, keyMsgType.String("text"), keyOrigin.Int(3)),
		"each message of the burst is counted received")
	runs, _ := m.histogram("wxkf.handler.duration", kf)
	assert.EqualValues(t, 1, runs, "the burst is one handler run")
	ok, _ := m.histogram("wxkf.handler.duration", kf, keyOutcome.String("ok"))
	assert.EqualValues(t, 1, ok)
	assert.Zero(t, m.sum("wxkf.retry.count"))
	assert.EqualValues(t, 1, m.sum("wxkf.send.count", kf, keyOutcome.String("accepted")), "one reply")

	pulls := map[trace.SpanID]bool{}
	for _, s := range tel.spansNamed("wxkf.pull") {
		pulls[s.SpanContext().SpanID()] = true
	}
	spans := tel.spansNamed("wxkf.message")
	require.Len(t, spans, 1, "one span for the run")
	span := spans[0]
	v, found := attr(span.Attributes(), keyMsgID)
	require.True(t, found)
	assert.Equal(t, ids[0], v.AsString(), "the first message's msgid")
	v, found = attr(span.Attributes(), keyBurstSize)
	require.True(t, found)
	assert.EqualValues(t, 3, v.AsInt64())
	var linked []string
	for _, l := range span.Links() {
		assert.True(t, pulls[l.SpanContext.SpanID()], "a link to the pull that delivered the message")
		id, found := attr(l.Attributes, keyMsgID)
		require.True(t, found, "the link carries the message's msgid")
		linked = append(linked, id.AsString())
	}
	assert.Equal(t, ids, linked, "one link per message, oldest first")
	work := tel.spansNamed("app.work")
	require.Len(t, work, 1)
	assert.Equal(t, span.SpanContext().SpanID(), work[0].Parent().SpanID(), "the handler's span nests under the run's")
}

// A burst's replies use the quota after its last message (§6: 5 sends per customer message,
// counted from the customer's latest one): not 5 per message of the burst, and not what is left
// of the first message's. Here an earlier handler sends 3 replies after the burst's first message
// reached WeCom, so only 2 are left after that message; the burst's handler sends 5, all accepted
// by kftest (which answers 95001 past the quota), and its 6th is refused locally.
func TestBurstRepliesUseTheLastMessagesQuota(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Unix(1_900_000_000, 0))
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithChannelClock(clock.Now), WithBurstWindow(1500*time.Millisecond))
	kfid := srv.OpenKfID()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	type turn struct {
		ids       []string
		leftFirst int
		errs      []error
	}
	turns := make(chan turn, 2)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		tn := turn{ids: burstIDs(m), leftFirst: r.QuotaLeft()}
		n := 6
		if m.Burst == nil { // the earlier message: held until the burst's first message is in
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			n = 3
		}
		for i := range n {
			tn.errs = append(tn.errs, r.Text(ctx, fmt.Sprintf("reply %d", i+1)))
		}
		turns <- tn
		return nil
	})

	next := func() turn {
		t.Helper()
		select {
		case tn := <-turns:
			return tn
		case <-time.After(10 * time.Second):
			t.Fatalf("no handler call; stats %+v", e.ch.Stats())
			return turn{}
		}
	}
	srv.AddText("fay", "before")
	e.notify()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first handler did not start")
	}
	clock.Advance(time.Second)
	first := srv.AddText("fay", "one")
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Messages == 2 }, 10*time.Second, 5*time.Millisecond)
	clock.Advance(500 * time.Millisecond)
	close(release) // 3 replies to "before", after "one" reached WeCom: they count against "one"
	tn := next()
	require.Len(t, tn.errs, 3)
	for _, err := range tn.errs {
		require.NoError(t, err)
	}
	require.Equal(t, 2, srv.QuotaLeft(kfid, "fay"), "WeCom counts them against the latest message")
	clock.Advance(500 * time.Millisecond)
	ids := []string{first, srv.AddText("fay", "two"), srv.AddText("fay", "three")}
	e.notify()

	tn = next()
	require.Equal(t, ids, tn.ids, "one turn for the burst")
	assert.Equal(t, 5, tn.leftFirst, "the quota after the last message")
	for i, err := range tn.errs[:5] {
		assert.NoError(t, err, "reply %d", i+1)
	}
	var re *ReplyError
	require.ErrorAs(t, tn.errs[5], &re, "the 6th reply")
	assert.ErrorIs(t, re, ErrQuotaExceeded)
	assert.Equal(t, 1, re.Dropped)
	e.settle()
	assert.Len(t, srv.SentTo(kfid, "fay"), 8, "3 replies before the burst, 5 to it")
	assert.Equal(t, 8, srv.Calls(pathSend), "the 6th never reached WeCom")
	assert.Empty(t, srv.Rejected())
	assert.Zero(t, srv.QuotaLeft(kfid, "fay"))
}

// A burst whose handler asks for a retry is run again as the same one turn: the same messages in
// the same order, one call, the reply sent once, and every message of the burst done after.
func TestBurstRetryRerunsAsOneTurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithBurstWindow(300*time.Millisecond), fastRetry)
	var mu sync.Mutex
	var calls [][]string
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		ids := burstIDs(m)
		mu.Lock()
		calls = append(calls, ids)
		n := len(calls)
		mu.Unlock()
		var texts []string
		for _, x := range m.Burst {
			texts = append(texts, x.Text.Content)
		}
		if err := r.Text(ctx, "re: "+strings.Join(texts, " + ")); err != nil {
			return err
		}
		if n == 1 {
			return RetryAfter(10*time.Millisecond, errors.New("model busy"))
		}
		return nil
	})
	ids := []string{e.srv.AddText("gil", "a"), e.srv.AddText("gil", "b"), e.srv.AddText("gil", "c")}
	e.notify()
	e.waitHandled(3)

	mu.Lock()
	assert.Equal(t, [][]string{ids, ids}, calls, "the first call and its rerun, each the whole burst in order")
	mu.Unlock()
	assert.Equal(t, []string{"re: a + b + c"}, e.texts("gil"), "the reply goes once")
	s := e.ch.Stats()
	assert.EqualValues(t, 1, s.Retries)
	assert.EqualValues(t, 1, s.Bursts)
	assert.EqualValues(t, 3, s.Handled, "every message of the burst is done")
	assert.Zero(t, s.DeadLetters)
	st, err := e.ch.stores.Lookup(context.Background(), e.srv.OpenKfID(), ids...)
	require.NoError(t, err)
	for i, x := range st {
		assert.True(t, x.Done, "%s is marked done in the store", ids[i])
	}
}

// A burst whose handler fails for good is given up as a whole: the dead-letter hook runs once with
// the message the handler saw (every message of the burst in m.Burst), and each message counts as a
// dead letter before all are marked done.
func TestBurstDeadLetterSeesEveryMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithBurstWindow(300*time.Millisecond), fastRetry)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		return errors.New("no answer for this") // permanent: not a Retry, not transient
	})
	var mu sync.Mutex
	var hooked [][]string
	e.ch.OnDeadLetter(func(ctx context.Context, m *Message, err error) {
		mu.Lock()
		hooked = append(hooked, burstIDs(m))
		mu.Unlock()
	})
	ids := []string{e.srv.AddText("hal", "a"), e.srv.AddText("hal", "b"), e.srv.AddText("hal", "c")}
	e.notify()
	e.waitHandled(3)
	mu.Lock()
	assert.Equal(t, [][]string{ids}, hooked, "one hook call with the whole burst")
	mu.Unlock()
	assert.EqualValues(t, 3, e.ch.Stats().DeadLetters)
}
