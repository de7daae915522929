package kf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// env is a Channel mounted on an HTTP server, wired to a kftest fake WeCom.
type env struct {
	t   *testing.T
	srv *kftest.Server
	ch  *Channel
	hs  *httptest.Server
	url string // the callback URL
	dir string
}

func newEnv(t *testing.T, opts ...ChannelOption) *env {
	t.Helper()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(opts...)
	return e
}

func (e *env) cfg() Config { return kftestConfig(e.srv) }

// kftestConfig is the Channel configuration that matches srv.
func kftestConfig(srv *kftest.Server) Config {
	return Config{CorpID: srv.CorpID(), Secret: srv.Secret(), Token: srv.CallbackToken(), EncodingAESKey: srv.EncodingAESKey()}
}

// wrappedLeases is a real store whose leases are wrapped by wrap: tests inject a store's faults
// into the writes or checks of one lease method.
type wrappedLeases struct {
	cursor.State
	wrap func(cursor.Lease) cursor.Lease
}

func (s wrappedLeases) Lock(ctx context.Context, key string, ttl time.Duration) (cursor.Lease, error) {
	l, err := s.State.Lock(ctx, key, ttl)
	if err != nil {
		return nil, err
	}
	return s.wrap(l), nil
}

// start (re)creates the Channel on the same state directory.
func (e *env) start(opts ...ChannelOption) {
	e.t.Helper()
	base := []ChannelOption{WithStateDir(e.dir), WithClientOptions(WithBaseURL(e.srv.URL())),
		withBackoff(5*time.Millisecond, 50*time.Millisecond)}
	ch, err := NewChannel(e.cfg(), append(base, opts...)...)
	require.NoError(e.t, err)
	e.ch = ch
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	e.hs = httptest.NewServer(mux)
	e.url = e.hs.URL + "/wxkf/"
	e.t.Cleanup(func() {
		e.hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ch.Shutdown(ctx)
	})
}

func (e *env) notify() {
	e.t.Helper()
	require.NoError(e.t, e.srv.Notify(context.Background(), e.url, e.srv.OpenKfID()))
}

func (e *env) waitSent(user string, n int) []kftest.Sent {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := e.srv.WaitSentTo(ctx, e.srv.OpenKfID(), user, n)
	require.NoError(e.t, err, "waiting for %d sends to %s; have %d; stats %+v", n, user, len(e.srv.SentTo(e.srv.OpenKfID(), user)), e.ch.Stats())
	return sent
}

// settle waits until the channel has nothing in flight and nothing queued.
func (e *env) settle() {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		s := e.ch.Stats()
		return s.InFlight == 0 && s.QueueDepth == 0
	}, 10*time.Second, 5*time.Millisecond)
}

func echo(ctx context.Context, m *Message, r Replier) error {
	if m.Text != nil {
		return r.Text(ctx, m.Text.Content)
	}
	return r.Text(ctx, "got "+string(m.MsgType))
}

func TestChannelEchoesText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	e.srv.AddText("alice", "你好, wxkf")
	e.notify()
	sent := e.waitSent("alice", 1)
	assert.Equal(t, "你好, wxkf", sent[0].Text)
	assert.Len(t, sent[0].ClientMsgID, len(clientMsgID("x", "y", 0)))
	e.settle()
	s := e.ch.Stats()
	assert.EqualValues(t, 1, s.Callbacks)
	assert.EqualValues(t, 1, s.Handled)
	assert.EqualValues(t, 1, s.Replies)
}

func TestServeHTTPVerifyAndReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.NoError(t, e.srv.VerifyURL(context.Background(), e.url))

	q, body := e.srv.SignedCallback(e.srv.OpenKfID())
	post := func(q url.Values, body []byte) int {
		resp, err := http.Post(e.url+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Forged: the signature does not match.
	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("msg_signature", strings.Repeat("0", 40))
	assert.Equal(t, http.StatusForbidden, post(bad, body))
	// Forged: a valid signature over other values.
	bad.Set("msg_signature", q.Get("msg_signature"))
	bad.Set("nonce", q.Get("nonce")+"1")
	assert.Equal(t, http.StatusForbidden, post(bad, body))
	// Malformed envelope.
	assert.Equal(t, http.StatusBadRequest, post(q, []byte("<xml>nope</xml>")))
	// No signature at all.
	assert.Equal(t, http.StatusBadRequest, post(url.Values{}, body))
	// Over 1 MB.
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(q, bytes.Repeat([]byte("a"), MaxCallbackBytes+1)))
	// The genuine one.
	assert.Equal(t, http.StatusOK, post(q, body))
	// GET with a bad signature.
	resp, err := http.Get(e.url + "?msg_signature=" + strings.Repeat("0", 40) + "&timestamp=1&nonce=2&echostr=QUJD")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	// Other methods.
	req, _ := http.NewRequest(http.MethodPut, e.url, nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.EqualValues(t, 7, e.ch.Stats().CallbacksRejected)
}

// A receiver mismatch (signed with our token, encrypted for another corp) is refused with 403.
func TestServeHTTPReceiverMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other, err := crypto.New(e.srv.CallbackToken(), e.srv.EncodingAESKey(), "wwsomeothercorp")
	require.NoError(t, err)
	env, err := other.EncryptMessage([]byte("<xml><Event>kf_msg_or_event</Event><OpenKfId>wk1</OpenKfId></xml>"), "1700000000", "n1")
	require.NoError(t, err)
	enc := between(string(env), "<Encrypt><![CDATA[", "]]>")
	q := url.Values{"msg_signature": {other.Signature("1700000000", "n1", enc)}, "timestamp": {"1700000000"}, "nonce": {"n1"}}
	resp, err := http.Post(e.url+"?"+q.Encode(), "text/xml", strings.NewReader(string(env)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func between(s, a, b string) string {
	i := strings.Index(s, a) + len(a)
	return s[i : i+strings.Index(s[i:], b)]
}

// The callback is answered at once even while handlers are slow: WeCom must never time out (5 s)
// and retry because of the bot.
func TestCallbackAnswersImmediately(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	release := make(chan struct{})
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		<-release
		return r.Text(ctx, "late")
	})
	defer close(release)
	e.srv.AddText("bob", "hi")
	q, body := e.srv.SignedCallback(e.srv.OpenKfID())
	for i := 0; i < 5; i++ {
		start := time.Now()
		resp, err := http.Post(e.url+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "success", string(b))
		assert.Less(t, time.Since(start), time.Second, "callback answered while the handler blocks")
	}
}

func TestOtherCallbackEventsSurface(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got := make(chan *crypto.Event, 1)
	e.ch.OnCallback(func(ctx context.Context, ev *crypto.Event) { got <- ev })
	inner := []byte("<xml><ToUserName>" + e.srv.CorpID() + "</ToUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType>" +
		"<Event>kf_account_auth_change</Event><AuthAddOpenKfId><OpenKfId>wkNEW</OpenKfId></AuthAddOpenKfId></xml>")
	require.NoError(t, e.srv.NotifyXML(context.Background(), e.url, inner))
	select {
	case ev := <-got:
		assert.Equal(t, crypto.EventKfAccountAuthChange, ev.Event)
		assert.Equal(t, []string{"wkNEW"}, ev.AuthAddOpenKfID)
	case <-time.After(5 * time.Second):
		t.Fatal("OnCallback not called")
	}
}

// A retry storm (WeCom retrying a slow callback, plus concurrent callbacks) gives one reply per
// message, in order per customer, and costs at most two pull rounds.
func TestRetryStormOneReplyPerMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	const customers, each = 10, 3
	for i := 0; i < each; i++ {
		for c := 0; c < customers; c++ {
			e.srv.AddText(fmt.Sprintf("c%d", c), fmt.Sprintf("m%d", i))
		}
	}
	require.NoError(t, e.srv.Storm(context.Background(), e.url, e.srv.OpenKfID(), 50))
	for c := 0; c < customers; c++ {
		e.waitSent(fmt.Sprintf("c%d", c), each)
	}
	e.settle()
	time.Sleep(50 * time.Millisecond)
	for c := 0; c < customers; c++ {
		sent := e.srv.SentTo(e.srv.OpenKfID(), fmt.Sprintf("c%d", c))
		require.Len(t, sent, each, "exactly one reply per message")
		for i, s := range sent {
			assert.Equal(t, fmt.Sprintf("m%d", i), s.Text, "in order")
		}
	}
	assert.LessOrEqual(t, e.srv.Calls("/cgi-bin/kf/sync_msg"), 2, "50 callbacks coalesce into at most 2 pull rounds")
	assert.Empty(t, e.srv.Rejected())
	assert.EqualValues(t, 50, e.ch.Stats().Callbacks)
}

// One customer writing 30 times gets at most 5 replies after their last message (§6): the Channel
// fits into that instead of meeting 95001.
func TestBurstFromOneCustomerRespectsQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	for i := 0; i < 30; i++ {
		e.srv.AddText("carol", fmt.Sprintf("m%02d", i))
	}
	e.notify()
	e.waitSent("carol", 5)
	e.settle()
	assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), "carol"), 5)
	for _, rj := range e.srv.Rejected() {
		assert.NotEqual(t, 95001, rj.Code)
	}
	assert.EqualValues(t, 30, e.ch.Stats().Handled, "every message is handled and done")
}

// Messages from many customers: each customer's replies keep the order of their messages while
// customers are served concurrently.
func TestOrderPerCustomerConcurrentAcross(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithWorkers(8))
	var running, peak atomic.Int32
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return r.Text(ctx, m.Text.Content)
	})
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	for i := 0; i < 5; i++ {
		for _, u := range users {
			e.srv.AddText(u, fmt.Sprintf("%s-%d", u, i))
		}
	}
	e.notify()
	for _, u := range users {
		sent := e.waitSent(u, 5)
		for i, s := range sent {
			assert.Equal(t, fmt.Sprintf("%s-%d", u, i), s.Text)
		}
	}
	assert.Greater(t, peak.Load(), int32(1), "customers run concurrently")
}

// Origin 4 (events) and 5 (human servicer) never reach OnMessage and are never answered.
func TestServicerAndSystemMessagesNotAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var events []string
	var mu sync.Mutex
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Origin != OriginCustomer {
			t.Errorf("OnMessage got origin %v", m.Origin)
		}
		return echo(ctx, m, r)
	})
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error {
		mu.Lock()
		events = append(events, m.Origin.String()+":"+string(m.MsgType))
		mu.Unlock()
		return nil
	})
	e.srv.AddServicer("agent1", 0)
	e.srv.AddServicerText("dave", "agent1", "a human says hi")
	e.srv.AddEvent("session_status_change", map[string]any{"external_userid": "dave", "change_type": 1, "new_servicer_userid": "agent1"})
	e.srv.AddText("dave", "customer message")
	e.notify()
	sent := e.waitSent("dave", 1)
	e.settle()
	assert.Equal(t, "customer message", sent[0].Text)
	assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), "dave"), 1)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"servicer:text", "system:event"}, events)
}

// While a human servicer has the session (state 3) the bot sends nothing and says why; with the
// state check on, it does not even try.
func TestHumanServicerStateBlocksReplies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithStateCheck(true))
	errs := make(chan error, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		err := r.Text(ctx, "bot reply")
		errs <- err
		return err
	})
	e.srv.AddServicer("agent1", 0)
	e.srv.AddText("erin", "help")
	e.srv.SetServiceState(e.srv.OpenKfID(), "erin", 3, "agent1")
	e.notify()
	err := <-errs
	var re *ReplyError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, ErrHumanServicer)
	assert.ErrorIs(t, err, ErrStateForbidsSend, "matches WeCom's 95018 too")
	e.settle()
	assert.Empty(t, e.srv.SentTo(e.srv.OpenKfID(), "erin"))
	assert.Empty(t, e.srv.Rejected(), "nothing was even attempted")
}

// By default (no state check) WeCom's 95018 is turned into the same typed error, and the state is
// remembered: the next reply is not attempted.
func TestStateRefusalFromWeComIsTyped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errs := make(chan error, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		err := r.Text(ctx, "bot reply")
		errs <- err
		return nil
	})
	e.srv.AddServicer("agent1", 0)
	e.srv.AddText("erin", "help")
	e.srv.SetServiceState(e.srv.OpenKfID(), "erin", 3, "agent1")
	e.notify()
	err := <-errs
	assert.ErrorIs(t, err, ErrHumanServicer)
	var api *APIError
	require.ErrorAs(t, err, &api)
	assert.Equal(t, 95018, api.Code)
	e.srv.AddText("erin", "still there?")
	e.notify()
	err = <-errs
	assert.ErrorIs(t, err, ErrHumanServicer)
	assert.False(t, errors.As(err, &api), "known from the earlier answer: no second attempt")
	assert.Len(t, e.srv.Rejected(), 1)
}

// A 15 000-byte reply goes out in at most 5 sends, never meets 95001, and says what it dropped.
func TestLongReplyFitsQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("这是一个很长的回答。", 500) // 15 000 bytes
	require.Len(t, long, 15000)
	errs := make(chan error, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		err := r.Text(ctx, long)
		errs <- err
		return nil
	})
	e.srv.AddText("frank", "tell me everything")
	e.notify()
	err := <-errs
	var re *ReplyError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.ErrorIs(t, err, ErrQuotaExceeded)
	assert.Equal(t, 5, re.Sent)
	assert.Equal(t, 3, re.Dropped) // 15 000 bytes need 8 parts
	assert.Positive(t, re.DroppedBytes)
	e.settle()
	sent := e.srv.SentTo(e.srv.OpenKfID(), "frank")
	require.Len(t, sent, 5)
	var joined strings.Builder
	for _, s := range sent {
		assert.LessOrEqual(t, len(s.Text), media.MaxTextBytes)
		joined.WriteString(s.Text)
	}
	out := joined.String()
	assert.True(t, strings.HasSuffix(out, "…"))
	assert.True(t, strings.HasPrefix(long, strings.TrimSuffix(out, "…")))
	for _, rj := range e.srv.Rejected() {
		assert.NotEqual(t, 95001, rj.Code)
	}
	assert.Zero(t, e.srv.QuotaLeft(e.srv.OpenKfID(), "frank"))
}

// The quota is per customer and a new customer message resets it.
func TestQuotaResetsOnNextMessage(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithChannelClock(clock.Now))
	left := make(chan int, 4)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		for i := 0; i < 3; i++ {
			if err := r.Text(ctx, fmt.Sprintf("%s #%d", m.Text.Content, i)); err != nil {
				return err
			}
		}
		left <- r.QuotaLeft()
		return nil
	})
	e.srv.AddText("gina", "one")
	e.notify()
	e.waitSent("gina", 3)
	assert.Equal(t, 2, <-left)
	e.srv.AddText("henk", "other customer")
	e.notify()
	e.waitSent("henk", 3)
	assert.Equal(t, 2, <-left, "per customer")
	clock.Advance(time.Minute)
	e.srv.AddText("gina", "two")
	e.notify()
	e.waitSent("gina", 6)
	assert.Equal(t, 2, <-left, "the new message restarted the count")
	assert.Empty(t, e.srv.Rejected())
}

// WeCom counts from when a message reaches it; the Channel learns of it when it pulls it. A send
// made in between counts against the new message's quota, so the book keeps it.
func TestQuotaBookKeepsSendsAfterTheMessage(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	q := newQuotaBook(func() time.Time { return now })
	key := customerKey("wk", "u")
	m1 := &Message{MsgID: "m1", OpenKfID: "wk", ExternalUserID: "u", SendTime: now}
	q.observe(m1)
	now = now.Add(time.Minute)
	require.True(t, q.take(key, "r1"))
	require.True(t, q.take(key, "r2"))
	assert.True(t, q.take(key, "r2"), "the same client msgid counts once")
	assert.Equal(t, 3, q.left(key))
	// m2 was sent before r2 reached WeCom, but pulled after: r1 and r2 count against m2.
	m2 := &Message{MsgID: "m2", OpenKfID: "wk", ExternalUserID: "u", SendTime: now.Add(-time.Second)}
	q.observe(m2)
	assert.Equal(t, 3, q.left(key))
	// m3 is a minute later: the count restarts.
	now = now.Add(time.Minute)
	q.observe(&Message{MsgID: "m3", OpenKfID: "wk", ExternalUserID: "u", SendTime: now})
	assert.Equal(t, 5, q.left(key))
	// An older message pulled late does not reset anything.
	require.True(t, q.take(key, "r3"))
	q.observe(m1)
	assert.Equal(t, 4, q.left(key))
	for _, id := range []string{"r4", "r5", "r6", "r7"} {
		require.True(t, q.take(key, id))
	}
	assert.False(t, q.take(key, "r8"), "the sixth send after a message is refused locally")
	q.release(key, "r7")
	assert.Equal(t, 1, q.left(key))
	// A send in the same second as the next message (or within the clock margin before it) cannot
	// be ordered against it: it counts against the newer window. The customer may lose a reply
	// slot, but WeCom never answers 95001.
	now = now.Add(time.Minute).Truncate(time.Second)
	require.True(t, q.take(key, "r9")) // at now
	q.observe(&Message{MsgID: "m4", OpenKfID: "wk", ExternalUserID: "u", SendTime: now})
	assert.Equal(t, 4, q.left(key))
	now = now.Add(time.Minute)
	q.observe(&Message{MsgID: "m5", OpenKfID: "wk", ExternalUserID: "u", SendTime: now})
	assert.Equal(t, 5, q.left(key), "a send a minute before the next message does not count")
	// 48 h later the window is closed.
	now = now.Add(49 * time.Hour)
	assert.True(t, q.expired(key))
}

// Skip-history: on the first sync, messages sent before the channel started are not answered;
// the one whose callback triggered the sync is.
func TestSkipHistoryKeepsTriggerMessage(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 3; i++ {
		srv.AddMessage(kftest.Message{ExternalUserID: "hank", MsgType: "text", SendTime: old.Add(time.Duration(i) * time.Minute),
			Body: map[string]any{"content": fmt.Sprintf("old %d", i)}})
	}
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start()
	e.ch.OnMessage(echo)
	time.Sleep(1100 * time.Millisecond) // send_time has second resolution
	srv.AddText("hank", "new")
	e.notify()
	sent := e.waitSent("hank", 1)
	e.settle()
	assert.Equal(t, "new", sent[0].Text)
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "hank"), 1)
	assert.EqualValues(t, 3, e.ch.Stats().HistorySkipped)

	// With skip-history off, a fresh state directory answers the backlog too.
	e2 := &env{t: t, srv: srv, dir: t.TempDir()}
	e2.start(WithSkipHistory(false))
	e2.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return nil })
	e2.notify()
	require.Eventually(t, func() bool { return e2.ch.Stats().Handled == 4 }, 5*time.Second, 5*time.Millisecond)
}

// A crash in the middle of a batch (no Shutdown) loses nothing, and the restarted channel sends
// nothing that WeCom accepts twice.
func TestCrashMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithWorkers(1))
	const customers, each = 6, 2
	var handled atomic.Int32
	gate := make(chan struct{})
	twoParts := func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, "a:"+m.Text.Content); err != nil {
			return err
		}
		return r.Text(ctx, "b:"+m.Text.Content)
	}
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, "a:"+m.Text.Content); err != nil {
			return err
		}
		if handled.Add(1) == 5 {
			<-gate // the 5th message has sent its first part when the process dies
		}
		return r.Text(ctx, "b:"+m.Text.Content)
	})
	for i := 0; i < each; i++ {
		for c := 0; c < customers; c++ {
			e.srv.AddText(fmt.Sprintf("c%d", c), fmt.Sprintf("%d", i))
		}
	}
	e.notify()
	require.Eventually(t, func() bool { return len(e.srv.Sent()) == 9 }, 10*time.Second, time.Millisecond)
	go func() { time.Sleep(20 * time.Millisecond); close(gate) }()
	e.ch.crash()

	// Restart on the same state directory; WeCom delivers the next callback.
	e.start()
	e.ch.OnMessage(twoParts)
	e.notify()
	for c := 0; c < customers; c++ {
		e.waitSent(fmt.Sprintf("c%d", c), 2*each)
	}
	e.settle()
	time.Sleep(50 * time.Millisecond)
	seen := map[string]bool{}
	for c := 0; c < customers; c++ {
		sent := e.srv.SentTo(e.srv.OpenKfID(), fmt.Sprintf("c%d", c))
		require.Len(t, sent, 2*each, "every part of every message exactly once")
		for i, s := range sent {
			want := fmt.Sprintf("%s:%d", map[int]string{0: "a", 1: "b"}[i%2], i/2)
			assert.Equal(t, want, s.Text)
			assert.False(t, seen[s.ClientMsgID], "client msgid accepted twice")
			seen[s.ClientMsgID] = true
		}
	}
	// A replayed message sends its recorded parts again unless the record marks them sent (the last
	// part of a call is marked by the next call's record or the done mark); WeCom refuses each repeat,
	// which counts as sent. Only messages not yet marked done at the crash are replayed: the one in
	// the handler, and those whose done marks were still being written.
	assert.LessOrEqual(t, e.ch.Stats().DuplicateSends, int64(4))
}

// The access token expiring mid-run is refreshed transparently.
func TestTokenExpiryMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	e.srv.AddText("jack", "before")
	e.notify()
	e.waitSent("jack", 1)
	e.srv.ExpireTokens()
	e.srv.AddText("jack", "after expiry")
	e.notify()
	e.waitSent("jack", 2)
	e.srv.InvalidateTokens()
	e.srv.AddText("jack", "after invalidation")
	e.notify()
	sent := e.waitSent("jack", 3)
	assert.Equal(t, "after invalidation", sent[2].Text)
}

// Shutdown lets in-flight handlers finish their replies and commits the cursor.
func TestShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		started <- struct{}{}
		time.Sleep(200 * time.Millisecond)
		return r.Text(ctx, "finished "+m.Text.Content)
	})
	e.srv.AddText("kate", "slow")
	e.notify()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, e.ch.Shutdown(ctx))
	sent := e.srv.SentTo(e.srv.OpenKfID(), "kate")
	require.Len(t, sent, 1)
	assert.Equal(t, "finished slow", sent[0].Text)

	// The cursor was committed: a new channel on the same directory pulls nothing again.
	dir, err := cursor.OpenDir(e.dir)
	require.NoError(t, err)
	cur, err := dir.Load(context.Background(), e.srv.OpenKfID())
	require.NoError(t, err)
	assert.NotEmpty(t, cur)
	require.NoError(t, dir.Close())

	// Callbacks after Shutdown get 503 so WeCom retries them elsewhere or later.
	q, body := e.srv.SignedCallback(e.srv.OpenKfID())
	resp, err := http.Post(e.url+"?"+q.Encode(), "text/xml", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// Shutdown whose ctx expires cancels handlers, returns ctx's error, and commits nothing undone.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	e.srv.AddText("leo", "stuck")
	e.notify()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, e.ch.Shutdown(ctx), context.DeadlineExceeded)

	// The message was not done: the next start answers it.
	e.start()
	e.ch.OnMessage(echo)
	e.notify()
	sent := e.waitSent("leo", 1)
	assert.Equal(t, "stuck", sent[0].Text)
}

// A store that fails is never read as "no cursor": the pull waits and resumes from the real one.
func TestStoreErrorIsNotNoCursor(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	mem := cursor.NewMemory()
	flaky := &flakyStores{Stores: mem}
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithStores(flaky))
	e.ch.OnMessage(echo)
	srv.AddText("mia", "first")
	e.notify()
	e.waitSent("mia", 1)
	e.settle()
	require.Eventually(t, func() bool {
		c, _ := mem.Load(context.Background(), srv.OpenKfID())
		return c != ""
	}, 5*time.Second, 5*time.Millisecond)

	flaky.fail.Store(true)
	e2 := &env{t: t, srv: srv, dir: t.TempDir()}
	e2.start(WithStores(flaky))
	e2.ch.OnMessage(echo)
	srv.AddText("mia", "second")
	e2.notify()
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "mia"), 1, "nothing pulled while the store fails")
	flaky.fail.Store(false)
	sent := e2.waitSent("mia", 2)
	e2.settle()
	assert.Equal(t, "second", sent[1].Text, "resumed from the stored cursor: 'first' not answered again")
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "mia"), 2)
	assert.Positive(t, e2.ch.Stats().ErrorsByCode[0])
}

type flakyStores struct {
	Stores
	fail atomic.Bool
}

var errFlaky = errors.New("store unavailable")

func (f *flakyStores) Load(ctx context.Context, id string) (string, error) {
	if f.fail.Load() {
		return "", errFlaky
	}
	return f.Stores.Load(ctx, id)
}

// enter_session with a welcome_code is answered through send_msg_on_event within 20 s.
func TestWelcome(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnWelcome(func(ctx context.Context, m *Message) (Content, error) {
		return NewText("欢迎 " + m.Event.Scene), nil
	})
	var ev atomic.Int32
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error { ev.Add(1); return nil })
	code := e.srv.EnterSession("nina", "qr", "")
	require.NotEmpty(t, code)
	e.notify()
	sent := e.waitSent("nina", 1)
	assert.True(t, sent[0].OnEvent)
	assert.Equal(t, code, sent[0].Code)
	assert.Equal(t, "欢迎 qr", sent[0].Text)
	e.settle()
	assert.EqualValues(t, 1, ev.Load(), "the event still reaches OnEvent")
}

func TestHandoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.AddServicer("agent7", 0)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text.Content == "转人工" {
			if err := r.Text(ctx, "正在为您转接人工客服"); err != nil {
				return err
			}
			return r.Handoff(ctx, "agent7")
		}
		return r.Text(ctx, m.Text.Content)
	})
	e.srv.AddText("oscar", "转人工")
	e.notify()
	e.waitSent("oscar", 1)
	e.settle()
	st, who := e.srv.ServiceState(e.srv.OpenKfID(), "oscar")
	assert.Equal(t, 3, st)
	assert.Equal(t, "agent7", who)
	// The bot stays quiet now.
	e.srv.AddText("oscar", "hello?")
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 2 }, 10*time.Second, time.Millisecond,
		"the second message was handled")
	assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), "oscar"), 1)
}

// A handler failing with a transient error runs again; its earlier sends are not repeated.
func TestHandlerRetryDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, "part one"); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return fmt.Errorf("backend: %w", ErrSystemBusy)
		}
		return r.Text(ctx, "part two")
	})
	e.srv.AddText("pam", "go")
	e.notify()
	sent := e.waitSent("pam", 2)
	e.settle()
	assert.EqualValues(t, 2, calls.Load())
	assert.Equal(t, []string{"part one", "part two"}, []string{sent[0].Text, sent[1].Text})
	assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), "pam"), 2)
	assert.Zero(t, e.ch.Stats().DuplicateSends, "the reply record knew part one was sent: not attempted again")
}

// A panicking handler is contained: the message is done and the next one is answered.
func TestHandlerPanicContained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text.Content == "boom" {
			panic("boom")
		}
		return echo(ctx, m, r)
	})
	e.srv.AddText("quin", "boom")
	e.srv.AddText("quin", "fine")
	e.notify()
	sent := e.waitSent("quin", 1)
	assert.Equal(t, "fine", sent[0].Text)
	assert.EqualValues(t, 1, e.ch.Stats().HandlerErrors)
}

func TestClientMsgID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200)
	seen := map[string]bool{}
	for _, in := range []string{"a", "b", long} {
		for i := 0; i < 100; i++ {
			id := clientMsgID("wk1", in, i)
			assert.LessOrEqual(t, len(id), 32)
			assert.NoError(t, checkMsgID(id))
			assert.Equal(t, id, clientMsgID("wk1", in, i), "deterministic")
			assert.False(t, seen[id])
			seen[id] = true
		}
	}
	assert.NotEqual(t, clientMsgID("wk1", "a", 0), clientMsgID("wk2", "a", 0))
	assert.LessOrEqual(t, len(clientMsgID("wk1", "a", 9999999)), 32)
}

func TestNewChannelValidates(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	good := kftestConfig(srv)
	bad := good
	bad.EncodingAESKey = "short"
	_, err := NewChannel(bad, WithStateDir(t.TempDir()))
	assert.ErrorIs(t, err, crypto.ErrInvalidAESKey)
	bad = good
	bad.Secret = ""
	_, err = NewChannel(bad, WithStateDir(t.TempDir()))
	assert.Error(t, err)
	// An invalid option value is an error wrapping ErrInvalidArgument, never a silent default.
	for name, opt := range map[string]ChannelOption{
		"WithWorkers(0)":                                   WithWorkers(0),
		"WithChannelLogger(nil)":                           WithChannelLogger(nil),
		"WithHandlerTimeout(0)":                            WithHandlerTimeout(0),
		"WithRetryHorizon(-1)":                             WithRetryHorizon(-1),
		"WithRetryBackoff(2s, 1s)":                         WithRetryBackoff(2*time.Second, time.Second),
		"WithQueueBytes(1)":                                WithQueueBytes(1),
		"WithPollInterval(1ms)":                            WithPollInterval(time.Millisecond),
		"WithBurstWindow(-1)":                              WithBurstWindow(-1),
		"WithReplayWindow(-1)":                             WithReplayWindow(-1),
		"WithLeaseTTL(0)":                                  WithLeaseTTL(0),
		"WithFetchTimeout(0)":                              WithFetchTimeout(0),
		"WithChannelClock(nil)":                            WithChannelClock(nil),
		"WithStores(nil)":                                  WithStores(nil),
		"WithStateDir(\"\")":                               WithStateDir(""),
		"WithClientOptions(invalid)":                       WithClientOptions(WithBaseURL("::not a url")),
		"WithMeterProvider(nil)":                           WithMeterProvider(nil),
		"WithTracerProvider(nil)":                          WithTracerProvider(nil),
		"WithMeterProvider(typed nil)":                     WithMeterProvider((*sdkmetric.MeterProvider)(nil)),
		"WithClientOptions(WithClientMeterProvider(nil))":  WithClientOptions(WithClientMeterProvider(nil)),
		"WithClientOptions(WithClientTracerProvider(nil))": WithClientOptions(WithClientTracerProvider(nil)),
	} {
		_, err = NewChannel(good, WithStateDir(t.TempDir()), opt)
		assert.ErrorIs(t, err, ErrInvalidArgument, name)
	}
	other, err := NewClient(good.CorpID, good.Secret)
	require.NoError(t, err)
	_, err = NewChannel(good, WithStateDir(t.TempDir()), WithClient(other), WithClientOptions(WithBaseURL(srv.URL())))
	assert.ErrorIs(t, err, ErrInvalidArgument, "WithClientOptions is not silently dropped with WithClient")
	// Nil options are ignored.
	ch, err := NewChannel(good, nil, WithStateDir(t.TempDir()), nil)
	require.NoError(t, err)
	require.NoError(t, ch.Shutdown(context.Background()))

	// A second channel on the same state directory fails at once, naming it.
	dir := t.TempDir()
	ch, err = NewChannel(good, WithStateDir(dir))
	require.NoError(t, err)
	_, err = NewChannel(good, WithStateDir(dir))
	require.ErrorIs(t, err, cursor.ErrDirLocked)
	assert.Contains(t, err.Error(), dir)
	require.NoError(t, ch.Shutdown(context.Background()))
	ch, err = NewChannel(good, WithStateDir(dir))
	require.NoError(t, err, "Shutdown released the directory")
	require.NoError(t, ch.Shutdown(context.Background()))
}

// A session_status_change event (it carries open_kfid only inside the event body) refreshes the
// cached session state at once: the next reply is not even attempted while a human has it.
func TestSessionEventRefreshesState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errs := make(chan error, 2)
	var events []*Message
	var mu sync.Mutex
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Ready(ctx); err != nil {
			errs <- err
			return nil
		}
		errs <- r.Text(ctx, m.Text.Content)
		return nil
	})
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error {
		mu.Lock()
		events = append(events, m)
		mu.Unlock()
		return nil
	})
	e.srv.AddServicer("agent1", 0)
	e.srv.AddText("rita", "one")
	e.notify()
	require.NoError(t, <-errs)
	e.srv.SetServiceState(e.srv.OpenKfID(), "rita", 3, "agent1")
	e.srv.AddEvent("session_status_change", map[string]any{"external_userid": "rita", "change_type": 1, "new_servicer_userid": "agent1"})
	e.srv.AddText("rita", "two")
	e.notify()
	err := <-errs
	assert.ErrorIs(t, err, ErrHumanServicer, "Ready says why before anything is sent")
	e.settle()
	assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), "rita"), 1)
	assert.Empty(t, e.srv.Rejected(), "no send was attempted: the event refreshed the state")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 1)
	assert.Equal(t, e.srv.OpenKfID(), events[0].OpenKfID, "events get the account they came from")
	assert.Equal(t, "rita", events[0].ExternalUserID)
}

// A handler that ignores its context cannot hold Shutdown past its deadline for long.
func TestShutdownDoesNotWaitForeverOnAStuckHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		started <- struct{}{}
		<-release // ignores ctx
		return nil
	})
	e.srv.AddText("nora", "stuck")
	e.notify()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	assert.ErrorIs(t, e.ch.Shutdown(ctx), context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 100*time.Millisecond+shutdownGrace+time.Second)
}

// A welcome_code is valid 20 s (§5): an enter_session pulled later than that is not answered
// with send_msg_on_event at all (it would fail), and Stats says so.
func TestWelcomeTooLateIsNotAttempted(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithChannelClock(clock.Now))
	var asked atomic.Int32
	e.ch.OnWelcome(func(ctx context.Context, m *Message) (Content, error) {
		asked.Add(1)
		return NewText("欢迎"), nil
	})
	require.NotEmpty(t, srv.EnterSession("olga", "qr", ""))
	clock.Advance(25 * time.Second)
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 1 }, 10*time.Second, time.Millisecond)
	assert.EqualValues(t, 1, e.ch.Stats().WelcomeExpired)
	assert.Zero(t, asked.Load(), "no welcome is composed for a code that cannot be used")
	assert.Empty(t, srv.Sent())
	assert.Empty(t, srv.Rejected())
}

// Nothing is sent more than 48 h after the customer's last message (§6): the Replier says so
// without calling send_msg.
func TestReplyWindowClosedAfter48h(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithChannelClock(clock.Now), WithSkipHistory(false))
	errs := make(chan error, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		errs <- r.Text(ctx, "too late")
		return nil
	})
	srv.AddMessage(kftest.Message{ExternalUserID: "pete", MsgType: "text", SendTime: clock.Now().Add(-49 * time.Hour),
		Body: map[string]any{"content": "anyone?"}})
	e.notify()
	err := <-errs
	var re *ReplyError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, ErrSessionExpired)
	assert.ErrorIs(t, err, ErrSessionExpired, "matches WeCom's 95002 too")
	assert.Empty(t, srv.Sent())
	assert.Empty(t, srv.Rejected(), "send_msg was not even called")
}
