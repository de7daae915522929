package kf

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf/kftest"
)

// logLine is one captured log record: its level, message and attributes (group-qualified keys,
// values as text), in order.
type logLine struct {
	level slog.Level
	msg   string
	keys  []string
	vals  map[string]string
}

// logCapture is a slog handler that keeps every record, at every level.
type logCapture struct {
	mu    *sync.Mutex
	lines *[]logLine
	attrs []slog.Attr
	group string
}

func newLogCapture() *logCapture {
	return &logCapture{mu: &sync.Mutex{}, lines: &[]logLine{}}
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	for _, a := range as {
		c.attrs = append(append([]slog.Attr(nil), c.attrs...), slog.Attr{Key: h.group + a.Key, Value: a.Value})
	}
	return &c
}

func (h *logCapture) WithGroup(name string) slog.Handler {
	c := *h
	c.group += name + "."
	return &c
}

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	l := logLine{level: r.Level, msg: r.Message, vals: map[string]string{}}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				add(prefix+a.Key+".", g)
			}
			return
		}
		l.keys = append(l.keys, prefix+a.Key)
		l.vals[prefix+a.Key] = v.String()
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.group, a); return true })
	h.mu.Lock()
	*h.lines = append(*h.lines, l)
	h.mu.Unlock()
	return nil
}

func (h *logCapture) all() []logLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logLine(nil), *h.lines...)
}

// The package documentation ("Logs") promises the same keys everywhere (open_kfid, msgid,
// msgtype, errcode, path, duration, attempt, err), Info for lifecycle, Warn for a retried
// failure, Error for a loss, and never a secret, a token or content. Every record of a Channel
// (and its Client, and the Logging middleware) is captured through a normal message, a send that
// WeCom answers "busy" until the handler is retried, a dead letter, a lease lost while a handler
// runs, and the start and shutdown.
func TestLogKeysAndLevels(t *testing.T) {
	t.Parallel()
	capture := newLogCapture()
	logger := slog.New(capture)
	clock := kftest.NewManualClock(time.Unix(1_900_000_000, 0))
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	stores := cursor.NewMemory(cursor.WithClock(clock.Now))
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(WithChannelLogger(logger), WithStores(stores), WithChannelClock(clock.Now), fastRetry,
		WithLeaseTTL(300*time.Millisecond), WithClientOptions(WithRetry(2, time.Millisecond, time.Millisecond)))
	kfid := srv.OpenKfID()
	ctx := context.Background()

	// Content, replies and customers are distinctive, to be searched for in the logs.
	const (
		reply    = "reply-text-5e1d0c"
		normal   = "content-normal-7f3a"
		busy     = "content-busy-91b2"
		doom     = "content-doom-c44e"
		hold     = "content-hold-0d8f"
		annUser  = "cust-ann-2b7"
		bobUser  = "cust-bob-6d1"
		cidUser  = "cust-cid-a90"
		danUser  = "cust-dan-e35"
		doomText = "template-missing-4c2"
	)
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	var calls atomic.Int32
	e.ch.Use(Logging(logger))
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		calls.Add(1)
		switch m.Text.Content {
		case doom:
			return errors.New(doomText) // permanent: dead-lettered at once
		case hold:
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return r.Text(ctx, reply)
	})

	// A normal message.
	normalID := srv.AddText(annUser, normal)
	e.notify()
	e.waitHandled(1)

	// A retried failure: WeCom answers every send "system busy" until the handler was retried.
	srv.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{pathSend}})
	busyID := srv.AddText(bobUser, busy)
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Retries >= 1 }, 10*time.Second, 5*time.Millisecond)
	srv.SetFaults(kftest.Faults{})
	e.waitHandled(2)
	require.Len(t, srv.SentTo(kfid, bobUser), 1)

	// A dead letter.
	doomID := srv.AddText(cidUser, doom)
	e.notify()
	e.waitHandled(3)
	require.EqualValues(t, 1, e.ch.Stats().DeadLetters)

	// A lease lost while a handler runs; the message is handled again by the next holding.
	holdID := srv.AddText(danUser, hold)
	e.notify()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold handler did not start")
	}
	clock.Advance(time.Second) // past the 300 ms lease
	require.Eventually(t, func() bool { return e.ch.Stats().LeaseLosses == 1 }, 10*time.Second, 5*time.Millisecond)
	close(release)
	e.waitHandled(4)
	token, err := e.ch.Client().AccessToken(ctx)
	require.NoError(t, err)
	require.NoError(t, e.ch.Shutdown(ctx))

	lines := capture.all()
	defer func() {
		if t.Failed() {
			for _, l := range lines {
				t.Logf("%s %q %v", l.level, l.msg, l.vals)
			}
		}
	}()
	msgIDs := map[string]bool{normalID: true, busyID: true, doomID: true, holdID: true}
	find := func(msg, msgid string) []logLine {
		var out []logLine
		for _, l := range lines {
			if l.msg == msg && (msgid == "" || l.vals["msgid"] == msgid) {
				out = append(out, l)
			}
		}
		return out
	}

	// (a) A record about a message names it by open_kfid and msgid, under exactly those keys: the
	// records that mention a msgid under any key, the Channel's per-message events, and the
	// client's lines about sends.
	perMessage := map[string]bool{"wxkf: turn": true, "wxkf: handler will be retried": true,
		"wxkf: message dead-lettered": true, "wxkf: reply not sent": true, "wxkf: send_msg failed": true}
	var about int
	for _, l := range lines {
		mentions := false
		for _, v := range l.vals {
			mentions = mentions || msgIDs[v]
		}
		if !mentions && !perMessage[l.msg] && !strings.HasSuffix(l.vals["path"], "/send_msg") {
			continue
		}
		about++
		assert.Equal(t, kfid, l.vals["open_kfid"], "%q %v: open_kfid", l.msg, l.vals)
		assert.True(t, msgIDs[l.vals["msgid"]], "%q %v: msgid", l.msg, l.vals)
	}
	assert.Greater(t, about, 10, "records about messages")

	// (b) No other key for these concepts; no key twice in a record; the shared keys hold what
	// they say.
	aliases := []string{"took", "elapsed", "latency", "time", "openKfID", "openkfid", "open_kf_id", "kfid",
		"msg_id", "msgId", "msgID", "message_id", "msg_type", "msgType", "type", "code", "errCode", "err_code",
		"error_code", "error", "errmsg_code", "api", "api_path", "url", "endpoint", "attempts", "tries",
		"retries", "panic", "token", "access_token", "secret"}
	for _, l := range lines {
		seen := map[string]bool{}
		for _, k := range l.keys {
			assert.False(t, seen[k], "%q: key %s twice", l.msg, k)
			seen[k] = true
			for _, a := range aliases {
				assert.NotEqual(t, a, k, "%q: key %q is not one of the documented keys (%v)", l.msg, k, l.vals)
			}
		}
		if v, ok := l.vals["duration"]; ok {
			_, err := time.ParseDuration(v)
			assert.NoError(t, err, "%q: duration %q", l.msg, v)
		}
		if v, ok := l.vals["path"]; ok {
			assert.True(t, strings.HasPrefix(v, "/cgi-bin/"), "%q: path %q", l.msg, v)
		}
	}

	// (c) Levels: the retry at Warn, the dead letter at Error, the lease loss at Warn, the
	// lifecycle at Info; Error for nothing but the loss.
	retried := find("wxkf: handler will be retried", busyID)
	require.NotEmpty(t, retried)
	for _, l := range retried {
		assert.Equal(t, slog.LevelWarn, l.level)
		assert.NotEmpty(t, l.vals["attempt"])
	}
	require.NotEmpty(t, find("wxkf: send_msg failed", busyID))
	for _, l := range lines {
		if l.vals["msgid"] == busyID {
			assert.LessOrEqual(t, l.level, slog.LevelWarn, "the retried message: %q", l.msg)
		}
	}
	dead := find("wxkf: message dead-lettered", doomID)
	require.Len(t, dead, 1)
	assert.Equal(t, slog.LevelError, dead[0].level)
	assert.Equal(t, "1", dead[0].vals["attempt"])
	assert.Contains(t, dead[0].vals["err"], doomText)
	lost := find("wxkf: lease lost; dropping this holding's queue (the next holder pulls it again)", "")
	require.Len(t, lost, 1)
	assert.Equal(t, slog.LevelWarn, lost[0].level)
	assert.Equal(t, kfid, lost[0].vals["open_kfid"])
	for _, msg := range []string{"wxkf: channel started", "wxkf: shut down"} {
		got := find(msg, "")
		require.Len(t, got, 1, msg)
		assert.Equal(t, slog.LevelInfo, got[0].level, msg)
	}
	for _, l := range lines {
		if l.level >= slog.LevelError {
			assert.Equal(t, "wxkf: message dead-lettered", l.msg, "only the loss is an Error: %v", l.vals)
		}
	}
	assert.Len(t, find("wxkf: turn", ""), int(calls.Load()), "the Logging middleware: a line per handler call")

	// (d) No secret, no token, no content, no customer.
	private := []string{srv.Secret(), srv.CallbackToken(), srv.EncodingAESKey(), token,
		normal, busy, doom, hold, reply, annUser, bobUser, cidUser, danUser}
	for _, l := range lines {
		for _, p := range private {
			assert.NotContains(t, l.msg, p)
			for k, v := range l.vals {
				assert.NotContains(t, v, p, "%q: %s", l.msg, k)
			}
		}
	}
}
