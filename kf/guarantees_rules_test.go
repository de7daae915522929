package kf

// Session state, the duplicate-msgid evidence, secrets, replayed callbacks, the quota book's size
// and image fetching.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// A session that goes back from a human servicer to the bot (3 → 1) without any event: the very
// next customer message is answered, though the Channel had just learned "human servicer".
func TestStateBackToBotWithoutEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	errs := make(chan error, 4)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		err := r.Text(ctx, "re: "+m.Text.Content)
		errs <- err
		return err
	})
	e.srv.AddServicer("agent1", kftest.ServicerReceiving)
	e.srv.SetServiceState(e.srv.OpenKfID(), "ivy", kftest.StateServicer, "agent1")
	e.srv.AddText("ivy", "one")
	e.notify()
	assert.ErrorIs(t, <-errs, ErrHumanServicer, "a human has it: the bot stays quiet")
	// Another system moves the session back to the bot (service_state/trans), which sends no event.
	e.srv.SetServiceState(e.srv.OpenKfID(), "ivy", kftest.StateAssist, "")
	e.srv.AddText("ivy", "two")
	e.notify()
	require.NoError(t, <-errs)
	e.waitTexts("ivy", []string{"re: two"}, 5*time.Second)
}

// WeCom's 95018 also means "session older than 48 h" (global error codes): when the session is with
// the bot, it is reported as the window having passed, not as a human servicer, and nothing is
// remembered that would silence the customer.
func TestRefusal95018WhileBotHasSession(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	px := newWecomProxy(t, srv.URL())
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithClientOptions(WithBaseURL(px.URL())))
	var refuse atomic.Bool
	refuse.Store(true)
	px.add(func(path string, _ []byte) (int, string, bool) {
		if path == pathSend && refuse.Load() {
			return 200, `{"errcode":95018,"errmsg":"send msg session state invalid"}`, true
		}
		return 0, "", false
	})
	errs := make(chan error, 2)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		err := r.Text(ctx, m.Text.Content)
		errs <- err
		return err
	})
	srv.SetServiceState(srv.OpenKfID(), "jay", kftest.StateAssist, "")
	srv.AddText("jay", "old session")
	e.notify()
	err := <-errs
	assert.ErrorIs(t, err, ErrSessionExpired)
	assert.NotErrorIs(t, err, ErrHumanServicer)
	refuse.Store(false)
	srv.AddText("jay", "hello again")
	e.notify()
	require.NoError(t, <-errs)
}

// A 40058 that does not name a repeated msgid is a failure, reported with WeCom's errmsg, never
// counted as "already sent"; the duplicate answer itself is counted as sent.
func TestInvalidParameterIsNotADuplicate(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	px := newWecomProxy(t, srv.URL())
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithClientOptions(WithBaseURL(px.URL())))
	px.add(func(path string, body []byte) (int, string, bool) {
		if path == pathSend && bytes.Contains(body, []byte("forbidden link")) {
			return 200, `{"errcode":40058,"errmsg":"invalid parameter: link host not allowed"}`, true
		}
		return 0, "", false
	})
	dead := make(chan error, 1)
	e.ch.OnDeadLetter(func(_ context.Context, _ *Message, err error) { dead <- err })
	e.ch.OnMessage(echo)
	srv.AddText("kim", "forbidden link")
	e.notify()
	select {
	case err := <-dead:
		assert.ErrorIs(t, err, ErrInvalidParameter)
		assert.ErrorContains(t, err, "link host not allowed", "WeCom's errmsg is kept")
	case <-time.After(5 * time.Second):
		t.Fatalf("no dead letter; stats %+v", e.ch.Stats())
	}
	e.settle()
	assert.Zero(t, e.ch.Stats().DuplicateSends)
	assert.Zero(t, e.ch.Stats().Replies)

	assert.True(t, isDuplicateMsgID(&APIError{Code: 40058, Msg: "invalid parameter: msgid duplicated"}))
	assert.True(t, isDuplicateMsgID(&APIError{Code: 40058, Msg: "msgid exist, hint: [x]"}))
	assert.False(t, isDuplicateMsgID(&APIError{Code: 40058, Msg: "invalid parameter: msgid longer than 32 bytes"}))
	assert.False(t, isDuplicateMsgID(&APIError{Code: 40058, Msg: "invalid Parameter"}))
	assert.False(t, isDuplicateMsgID(&APIError{Code: 45009, Msg: "msgid duplicated"}))
}

// No secret (corpsecret, callback Token, EncodingAESKey) is printed through any fmt verb or slog.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	cfg := Config{CorpID: srv.CorpID(), Secret: "S3cr3t%2Bvalue", Token: "CbT0ken", EncodingAESKey: srv.EncodingAESKey()}
	cl, err := NewClient(cfg.CorpID, cfg.Secret, WithBaseURL(srv.URL()))
	require.NoError(t, err)
	secrets := []string{cfg.Secret, "S3cr3t", cfg.Token, cfg.EncodingAESKey}
	var out strings.Builder
	for _, v := range []any{cfg, &cfg, cl} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		slog.New(h).Info("config", "cfg", cfg, "client", cl, "ptr", &cfg)
	}
	for _, s := range secrets {
		assert.NotContains(t, out.String(), s)
	}
	assert.Contains(t, out.String(), cfg.CorpID)

	// A URL whose secret contains percent-encoded characters is redacted in full.
	red := sanitizeURL("https://x/cgi-bin/gettoken?corpid=a&corpsecret=abc%2Bdef%3Dghi&x=1")
	assert.NotContains(t, red, "def")
	assert.NotContains(t, red, "ghi")
	assert.Contains(t, red, "x=1")
}

// A callback whose signed timestamp is outside the replay window is refused; an older callback
// never replaces the sync token of a newer one.
func TestCallbackReplayWindowAndTokenOrder(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now().Add(-2 * time.Hour))
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithReplayWindow(10 * time.Minute))
	err := srv.Notify(context.Background(), e.url, srv.OpenKfID())
	require.Error(t, err, "a two-hour-old callback is refused")
	assert.EqualValues(t, 1, e.ch.Stats().CallbacksRejected)
	assert.Zero(t, e.ch.Stats().Callbacks)

	a := &account{ch: e.ch, id: "wk1", wake: make(chan struct{}, 1), active: true}
	e.ch.accMu.Lock()
	e.ch.accounts["wk1"] = a
	e.ch.accMu.Unlock()
	now := time.Now()
	e.ch.trigger("wk1", "NEW", now)
	e.ch.trigger("wk1", "OLD", now.Add(-time.Minute))
	assert.Equal(t, "NEW", a.currentToken(), "a replayed older callback does not replace a newer token")
	e.ch.trigger("wk1", "NEWER", now.Add(time.Second))
	assert.Equal(t, "NEWER", a.currentToken())
}

// The quota book forgets customers idle for 48 h, including ones it never saw write (only sends).
func TestQuotaBookPrunes(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	q := newQuotaBook(clock.Now)
	for i := range 500 {
		q.take(fmt.Sprintf("acc\x00u%d", i), "m") // sends to customers never observed
		q.observe(&Message{MsgID: fmt.Sprintf("id%d", i), OpenKfID: "acc", ExternalUserID: fmt.Sprintf("v%d", i), SendTime: clock.Now()})
	}
	require.Equal(t, 1000, q.size())
	clock.Advance(49 * time.Hour)
	for i := range pruneEvery {
		q.take("acc\x00fresh", fmt.Sprintf("m%d", i%quotaPerMessage))
	}
	assert.Equal(t, 1, q.size(), "only the active customer is left")
}

func testPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// ImageURL refuses loopback, private and link-local addresses by default (URLs come from
// customers and models), unless allowed; its download has its own timeout.
func TestImageURLRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	pngData := testPNG(t)
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(2 * time.Second)
		}
		_, _ = w.Write(pngData)
	}))
	t.Cleanup(img.Close)
	for _, tc := range []struct {
		name  string
		opts  []ChannelOption
		url   string
		check func(t *testing.T, err error)
	}{
		{"loopback refused", nil, img.URL + "/a.png", func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrForbiddenAddress) }},
		{"private literal refused", nil, "http://10.1.2.3/a.png", func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrForbiddenAddress) }},
		{"link-local refused", nil, "http://169.254.169.254/latest/meta-data", func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrForbiddenAddress) }},
		{"not http", nil, "file:///etc/passwd", func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrInvalidArgument) }},
		{"allowed when asked", []ChannelOption{WithFetchPrivateAddresses(true)}, img.URL + "/a.png", func(t *testing.T, err error) { assert.NoError(t, err) }},
		{"own timeout", []ChannelOption{WithFetchPrivateAddresses(true), WithFetchTimeout(200 * time.Millisecond)}, img.URL + "/slow",
			func(t *testing.T, err error) { assert.ErrorIs(t, err, context.DeadlineExceeded) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.opts...)
			errs := make(chan error, 1)
			e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
				errs <- r.ImageURL(ctx, tc.url)
				return nil
			})
			e.srv.AddText("lee", "picture please")
			e.notify()
			select {
			case err := <-errs:
				tc.check(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not run")
			}
		})
	}
	assert.False(t, publicAddr(mustAddr("100.64.1.1")))
	assert.False(t, publicAddr(mustAddr("::1")))
	assert.False(t, publicAddr(mustAddr("::ffff:127.0.0.1")))
	assert.False(t, publicAddr(mustAddr("fd00::1")))
	assert.True(t, publicAddr(mustAddr("1.1.1.1")))
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
