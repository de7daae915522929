package kf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf/kftest"
)

// Every instrument and span, asserted by value after a scripted run against kftest (through a
// proxy that answers one send with 95001): a callback storm, a handler retry, a permanent
// failure and a panic (dead letters), a handoff, a lease lost while a handler runs, a replay of
// everything from an emptied cursor (dedupe hits), and callbacks that are refused.
func TestTelemetryEveryInstrument(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	t0 := time.Unix(1_900_000_000, 0)
	clock := kftest.NewManualClock(t0)
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	srv.AddServicer("agent7", 0)
	proxy := newWecomProxy(t, srv.URL())
	proxy.add(func(path string, body []byte) (int, string, bool) {
		if path == pathSend && bytes.Contains(body, []byte(`"touser":"eve"`)) {
			return http.StatusOK, `{"errcode":95001,"errmsg":"api freq out of limit"}`, true
		}
		return 0, "", false
	})
	stores := cursor.NewMemory(cursor.WithClock(clock.Now))
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(append(tel.options(), WithStores(stores), WithChannelClock(clock.Now), fastRetry,
		WithLeaseTTL(300*time.Millisecond), WithClientOptions(WithBaseURL(proxy.URL())))...)
	kfid := srv.OpenKfID()
	ctx := context.Background()

	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	var bobRuns atomic.Int32
	app := tel.tp.Tracer("app")
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		_, span := app.Start(ctx, "app.work") // the application's own span
		defer span.End()
		switch m.Text.Content {
		case "retry":
			if bobRuns.Add(1) == 1 {
				return Retry(errors.New("model busy"))
			}
		case "doom":
			return errors.New("template missing")
		case "panic":
			panic("bug")
		case "hold":
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		case "handoff":
			if err := r.Text(ctx, "正在转人工"); err != nil {
				return err
			}
			return r.Handoff(ctx, "agent7")
		}
		return r.Text(ctx, m.Text.Content)
	})
	waitHandled := func(n int64) {
		t.Helper()
		require.Eventually(t, func() bool {
			s := e.ch.Stats()
			return s.Handled == n && s.InFlight == 0
		}, 10*time.Second, 5*time.Millisecond, "handled %d; stats %+v", n, e.ch.Stats())
	}

	// A storm of 20 copies of one callback, for customer texts, an event and a servicer's text.
	require.NoError(t, srv.VerifyURL(ctx, e.url))
	customers := []string{"ann", "bob", "cid", "dan", "eve", "fay", "gus", "hal"}
	msgIDs := []string{
		srv.AddText("ann", "hello"), srv.AddText("bob", "retry"), srv.AddText("cid", "doom"),
		srv.AddText("dan", "panic"), srv.AddText("eve", "quota"),
		srv.AddEvent("enter_session", map[string]any{"external_userid": "hal"}),
		srv.AddServicerText("ann", "agent7", "人工回复"),
	}
	require.NoError(t, srv.Storm(ctx, e.url, kfid, 20))
	waitHandled(7)

	// A handoff, then a message the bot must not answer.
	msgIDs = append(msgIDs, srv.AddText("fay", "handoff"))
	e.notify()
	waitHandled(8)
	msgIDs = append(msgIDs, srv.AddText("fay", "hello?"))
	e.notify()
	waitHandled(9)

	// A handler running while the lease is lost: the gauges while it runs, then the loss.
	msgIDs = append(msgIDs, srv.AddText("gus", "hold"))
	e.notify()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold handler did not start")
	}
	m := tel.collect()
	assert.EqualValues(t, 1, m.gauge("wxkf.message.in_flight"))
	assert.EqualValues(t, 0, m.gauge("wxkf.message.queued"))
	held := e.ch.Stats().QueuedBytes
	assert.Positive(t, held)
	assert.EqualValues(t, held, m.gauge("wxkf.message.queued_bytes"))
	assert.EqualValues(t, 1, m.gauge("wxkf.lease.held", keyOpenKfID.String(kfid)))
	clock.Advance(time.Second) // past the 300 ms lease: lost
	require.Eventually(t, func() bool { return e.ch.Stats().LeaseLosses == 1 }, 10*time.Second, 5*time.Millisecond)
	close(release)
	waitHandled(10)

	// Cursor lag: 90 s later, the newest handled message is 91 s old.
	require.Eventually(t, func() bool { return e.ch.Stats().LeasesHeld == 0 }, 10*time.Second, 5*time.Millisecond)
	clock.Advance(90 * time.Second)
	m = tel.collect()
	assert.InDelta(t, 91, m.gauge("wxkf.cursor.lag", keyOpenKfID.String(kfid)), 0.001)
	assert.EqualValues(t, 0, m.gauge("wxkf.lease.held", keyOpenKfID.String(kfid)))
	assert.EqualValues(t, 0, m.gauge("wxkf.message.in_flight"))
	assert.EqualValues(t, 0, m.gauge("wxkf.message.queued"))
	assert.EqualValues(t, 0, m.gauge("wxkf.message.queued_bytes"))

	// The cursor emptied: every message is pulled again, and skipped as done.
	require.Zero(t, e.ch.Stats().DedupeHits)
	require.NoError(t, stores.Save(ctx, kfid, ""))
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().DedupeHits == 10 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return e.ch.Stats().LeasesHeld == 0 }, 10*time.Second, 5*time.Millisecond)

	// Refused callbacks: stale (signed, then the clock passes the 30 min window), forged,
	// malformed, too large, and one during shutdown.
	post := func(q url.Values, body []byte) int {
		resp, err := http.Post(e.url+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	q, body := srv.SignedCallback(kfid)
	clock.Advance(31 * time.Minute)
	assert.Equal(t, http.StatusForbidden, post(q, body))
	q, body = srv.SignedCallback(kfid)
	forged := url.Values{}
	for k, v := range q {
		forged[k] = v
	}
	forged.Set("msg_signature", strings.Repeat("0", 40))
	assert.Equal(t, http.StatusForbidden, post(forged, body))
	assert.Equal(t, http.StatusBadRequest, post(q, []byte("<xml>nope</xml>")))
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(q, bytes.Repeat([]byte("a"), MaxCallbackBytes+1)))
	stats := e.ch.Stats()
	require.NoError(t, e.ch.Shutdown(ctx))
	assert.Equal(t, http.StatusServiceUnavailable, post(q, body))

	m = tel.collect()
	kf := keyOpenKfID.String(kfid)

	// Callbacks.
	result := func(r string) int64 { return m.sum("wxkf.callback.count", keyCallbackResult.String(r)) }
	for _, r := range []string{"verified", "stale", "forged", "malformed", "too_large", "shutting_down"} {
		assert.EqualValues(t, 1, result(r), r)
	}
	assert.EqualValues(t, 24, result("accepted")+result("coalesced"), "20 storm copies and 4 callbacks")
	assert.Equal(t, stats.Coalesced, result("coalesced"))
	assert.Positive(t, result("accepted"))

	// Pulls and messages.
	assert.Equal(t, stats.Pulls, m.sum("wxkf.pull.count", kf, keyOutcome.String("ok")))
	assert.Zero(t, m.sum("wxkf.pull.count", keyOutcome.String("error")))
	pulls, _ := m.histogram("wxkf.pull.duration", kf, keyOutcome.String("ok"))
	assert.EqualValues(t, stats.Pulls, pulls)
	pages, perPage := m.histogram("wxkf.pull.messages", kf)
	assert.EqualValues(t, stats.Pulls, pages)
	assert.EqualValues(t, 21, perPage, "10 messages, the held one twice (two holdings), then all 10 again")
	msg := func(mt string, origin int) int64 {
		return m.sum("wxkf.message.count", kf, keyMsgType.String(mt), keyOrigin.Int(origin))
	}
	assert.EqualValues(t, 17, msg("text", 3))
	assert.EqualValues(t, 2, msg("event", 4))
	assert.EqualValues(t, 2, msg("text", 5))
	assert.Equal(t, stats.Messages, m.sum("wxkf.message.count"))
	assert.EqualValues(t, 10, m.sum("wxkf.dedupe.hit.count", kf))

	// Handler runs.
	runs := map[string]uint64{"ok": 6, "error": 2, "retried": 1, "dead_lettered": 1, "panic": 1, "dropped": 1}
	for out, want := range runs {
		n, sum := m.histogram("wxkf.handler.duration", kf, keyOutcome.String(out))
		assert.Equal(t, want, n, "handler runs %s", out)
		assert.Positive(t, sum, out)
	}
	assert.EqualValues(t, 1, m.sum("wxkf.retry.count", kf))
	assert.EqualValues(t, 2, m.sum("wxkf.dead_letter.count", kf))
	assert.Equal(t, stats.DeadLetters, m.sum("wxkf.dead_letter.count"))
	assert.EqualValues(t, 1, m.sum("wxkf.lease.loss.count", kf))

	// Sends: 4 accepted, the 95001, and what it dropped.
	assert.EqualValues(t, 4, m.sum("wxkf.send.count", kf, keyMsgType.String("text"), keyOutcome.String("accepted"), keyErrCode.Int(0)))
	assert.EqualValues(t, 1, m.sum("wxkf.send.count", kf, keyMsgType.String("text"), keyOutcome.String("refused"), keyErrCode.Int(95001)))
	assert.EqualValues(t, 5, m.sum("wxkf.send.count"))
	n, _ := m.histogram("wxkf.send.duration", kf, keyOutcome.String("accepted"))
	assert.EqualValues(t, 4, n)
	n, _ = m.histogram("wxkf.send.duration", kf, keyOutcome.String("refused"))
	assert.EqualValues(t, 1, n)
	assert.EqualValues(t, 1, m.sum("wxkf.quota.drop.count", kf))

	// API calls, as the network saw them; the token.
	for _, path := range []string{pathGetToken, pathSyncMsg, pathSendMsg, pathServiceStateTrans, pathServiceStateGet} {
		made := int64(proxy.count(path))
		assert.Equal(t, made, m.sum("wxkf.api.call.count", keyPath.String(path)), path)
		n, _ := m.histogram("wxkf.api.call.duration", keyPath.String(path))
		assert.EqualValues(t, made, n, path)
	}
	assert.EqualValues(t, 1, m.sum("wxkf.api.call.count", keyPath.String(pathSendMsg), keyErrCode.Int(95001)))
	assert.EqualValues(t, 4, m.sum("wxkf.api.call.count", keyPath.String(pathSendMsg), keyErrCode.Int(0)))
	assert.EqualValues(t, 1, m.sum("wxkf.api.call.count", keyPath.String(pathServiceStateTrans), keyErrCode.Int(0)))
	assert.EqualValues(t, 1, m.sum("wxkf.api.call.count", keyPath.String(pathServiceStateGet), keyErrCode.Int(0)))
	assert.EqualValues(t, srv.AccessTokens(), m.sum("wxkf.token.refresh.count", keyOutcome.String("ok")))
	assert.EqualValues(t, 1, srv.AccessTokens())

	// Every instrument recorded; no personal data and nothing unbounded in any attribute.
	for _, name := range []string{"wxkf.callback.count", "wxkf.pull.count", "wxkf.pull.duration", "wxkf.pull.messages",
		"wxkf.message.count", "wxkf.handler.duration", "wxkf.send.count", "wxkf.send.duration", "wxkf.quota.drop.count",
		"wxkf.dedupe.hit.count", "wxkf.retry.count", "wxkf.dead_letter.count", "wxkf.lease.loss.count",
		"wxkf.token.refresh.count", "wxkf.api.call.count", "wxkf.api.call.duration"} {
		assert.True(t, m.has(name), name)
	}
	allowed := map[attribute.Key]bool{keyOpenKfID: true, keyMsgType: true, keyOrigin: true, keyOutcome: true,
		keyErrCode: true, keyPath: true, keyCallbackResult: true, keyErrorType: true}
	for name, sets := range m.attributeSets() {
		for _, set := range sets {
			for _, kv := range set.ToSlice() {
				assert.True(t, allowed[kv.Key], "%s: attribute %s", name, kv.Key)
				for _, private := range append(append([]string{}, customers...), msgIDs...) {
					assert.NotEqual(t, private, kv.Value.Emit(), "%s: %s", name, kv.Key)
				}
			}
		}
	}

	// Spans.
	assert.Len(t, tel.spansNamed("wxkf.callback"), 30)
	pullSpans := tel.spansNamed("wxkf.pull")
	assert.Len(t, pullSpans, int(stats.Pulls))
	pullIDs := map[trace.SpanID]bool{}
	for _, s := range pullSpans {
		pullIDs[s.SpanContext().SpanID()] = true
	}
	msgSpans := tel.spansNamed("wxkf.message")
	require.Len(t, msgSpans, 12)
	msgByID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range msgSpans {
		msgByID[s.SpanContext().SpanID()] = s
		for _, k := range []attribute.Key{keyOpenKfID, keyMsgID, keyMsgType, keyOutcome} {
			_, ok := attr(s.Attributes(), k)
			assert.True(t, ok, "message span has %s", k)
		}
		_, ok := attr(s.Attributes(), keyExternalUserID)
		assert.False(t, ok, "no external_userid without WithTraceCustomerIDs")
		require.Len(t, s.Links(), 1)
		assert.True(t, pullIDs[s.Links()[0].SpanContext.SpanID()], "linked to the pull that delivered it")
	}
	for _, name := range []string{"app.work", "POST " + pathSendMsg} {
		spans := tel.spansNamed(name)
		assert.NotEmpty(t, spans, name)
		for _, s := range spans {
			parent, ok := msgByID[s.Parent().SpanID()]
			require.True(t, ok, "%s nests under a message span", name)
			assert.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
		}
	}
	assert.Len(t, tel.spansNamed("POST "+pathSendMsg), proxy.count(pathSendMsg))
	for _, s := range tel.spansNamed("POST " + pathSyncMsg) {
		assert.True(t, pullIDs[s.Parent().SpanID()], "sync_msg nests under its pull")
	}
}

// WithTraceCustomerIDs puts the external_userid on the message span; metrics never carry it.
func TestTraceCustomerIDsOption(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	e := newEnv(t, append(tel.options(), WithTraceCustomerIDs(true))...)
	e.ch.OnMessage(echo)
	e.srv.AddText("ivy", "hi")
	e.notify()
	e.waitSent("ivy", 1)
	e.settle()
	spans := tel.spansNamed("wxkf.message")
	require.Len(t, spans, 1)
	v, ok := attr(spans[0].Attributes(), keyExternalUserID)
	require.True(t, ok)
	assert.Equal(t, "ivy", v.AsString())
	for name, sets := range tel.collect().attributeSets() {
		for _, set := range sets {
			_, ok := set.Value(keyExternalUserID)
			assert.False(t, ok, name)
		}
	}
}

// A Client's API metrics: WeCom's errcode, or the error type when there is none; token refreshes.
func TestClientTelemetry(t *testing.T) {
	t.Parallel()
	tel := newTelemetry(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	clock := kftest.NewManualClock(time.Now())
	c, err := NewClient(srv.CorpID(), srv.Secret(), WithBaseURL(srv.URL()), WithClock(clock.Now),
		WithRetry(1, time.Millisecond, time.Millisecond),
		WithClientMeterProvider(tel.mp), WithClientTracerProvider(tel.tp))
	require.NoError(t, err)
	ctx := context.Background()

	srv.FailWith(pathGetToken, 40001, "invalid credential")
	_, err = c.ListAccounts(ctx, 0, 0)
	require.Error(t, err)
	srv.Handle(pathGetToken, nil)
	clock.Advance(time.Minute) // past the credential cooldown
	_, err = c.ListAccounts(ctx, 0, 0)
	require.NoError(t, err)
	srv.Handle(pathAccountList, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	_, err = c.ListAccounts(ctx, 0, 0)
	require.Error(t, err)
	srv.FailWith(pathAccountList, 48002, "api forbidden")
	_, err = c.ListAccounts(ctx, 0, 0)
	require.ErrorIs(t, err, ErrAPIForbidden)

	m := tel.collect()
	calls := func(path string, kv attribute.KeyValue) int64 {
		return m.sum("wxkf.api.call.count", keyPath.String(path), kv)
	}
	assert.EqualValues(t, 1, calls(pathGetToken, keyErrCode.Int(40001)))
	assert.EqualValues(t, 1, calls(pathGetToken, keyErrCode.Int(0)))
	assert.EqualValues(t, 1, calls(pathAccountList, keyErrorType.String("token")), "no token: WeCom never saw the call")
	assert.EqualValues(t, 1, calls(pathAccountList, keyErrCode.Int(0)))
	assert.EqualValues(t, 1, calls(pathAccountList, keyErrorType.String("502")))
	assert.EqualValues(t, 1, calls(pathAccountList, keyErrCode.Int(48002)))
	assert.EqualValues(t, 1, m.sum("wxkf.token.refresh.count", keyOutcome.String("error")))
	assert.EqualValues(t, 1, m.sum("wxkf.token.refresh.count", keyOutcome.String("ok")))
	n, _ := m.histogram("wxkf.api.call.duration", keyPath.String(pathAccountList))
	assert.EqualValues(t, 4, n)

	spans := tel.spansNamed("POST " + pathAccountList)
	require.Len(t, spans, 4)
	codes := []string{}
	for _, s := range spans {
		if v, ok := attr(s.Attributes(), keyErrCode); ok {
			codes = append(codes, fmt.Sprint(v.AsInt64()))
		}
		if v, ok := attr(s.Attributes(), keyErrorType); ok {
			codes = append(codes, v.AsString())
		}
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), "access_token", "no URL with the token")
		}
	}
	assert.ElementsMatch(t, []string{"token", "0", "502", "48002"}, codes)
	// The token fetch nests under the call that needed it.
	for _, s := range tel.spansNamed("GET " + pathGetToken) {
		assert.True(t, s.Parent().IsValid(), "gettoken runs inside the call that needed a token")
	}
}

// switchTracer is a tracer that records nothing until an SDK's tracer is switched in, as the
// global provider does when an application calls otel.SetTracerProvider late.
type switchTracer struct {
	embedded.Tracer
	cur atomic.Pointer[trace.Tracer]
}

func (s *switchTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t := s.cur.Load(); t != nil {
		return (*t).Start(ctx, name, opts...)
	}
	return tracenoop.NewTracerProvider().Tracer("").Start(ctx, name, opts...)
}

// While no SDK records, spans cost no allocation; an SDK switched in later is used within
// idleFor; a context that carries a span always reaches the tracer.
func TestSpanStarterSkipsAnIdleTracer(t *testing.T) { // not parallel: AllocsPerRun
	sw := &switchTracer{}
	s := &spanStarter{tr: sw}
	ctx := context.Background()
	_, span := s.Start(ctx, "first")
	span.End()
	assert.False(t, span.SpanContext().IsValid())
	allocs := testing.AllocsPerRun(100, func() {
		c, sp := s.Start(ctx, "idle")
		_ = withSpan(c, sp)
		sp.End()
	})
	assert.Zero(t, allocs)

	tel := newTelemetry(t)
	sdk := tel.tp.Tracer("sdk")
	sw.cur.Store(&sdk)
	start := time.Now()
	require.Eventually(t, func() bool {
		_, sp := s.Start(ctx, "after")
		defer sp.End()
		return sp.IsRecording()
	}, 3*idleFor, 5*time.Millisecond)
	assert.Less(t, time.Since(start), idleFor+500*time.Millisecond)

	// A parent in the context always reaches the tracer, idle or not.
	sw.cur.Store(nil)
	_, sp := s.Start(ctx, "idle again")
	sp.End()
	pctx, parent := sdk.Start(ctx, "parent")
	defer parent.End()
	_, child := s.Start(pctx, "child")
	defer child.End()
	assert.Equal(t, parent.SpanContext().TraceID(), child.SpanContext().TraceID(), "the no-op tracer propagates the parent")
	assert.False(t, child.IsRecording())
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_, sp := s.Start(ctx, "still idle") // a propagated parent did not end the idleness
		sp.End()
	}))
}
