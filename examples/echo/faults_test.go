package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

const pathSend = "/cgi-bin/kf/send_msg"

// buildEcho builds the echo binary once per test.
func buildEcho(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// faultBot is an echo process against its own kftest server.
type faultBot struct {
	*bot
	srv  *kftest.Server
	url  string
	kfid string
}

func newFaultBot(t *testing.T, bin string, srv *kftest.Server, env ...string) *faultBot {
	work := t.TempDir()
	port := freePort(t)
	b := &bot{t: t, bin: bin, dir: work, env: append([]string{
		"WECHATCOM_KF_PORT=" + strconv.Itoa(port),
		"WECHATCOM_CORP_ID=" + srv.CorpID(),
		"WECHATCOM_KF_SECRET=" + srv.Secret(),
		"WECHATCOM_KF_TOKEN=" + srv.CallbackToken(),
		"WECHATCOM_KF_AES_KEY=" + srv.EncodingAESKey(),
		"WECHATCOM_KF_API_BASE=" + srv.URL(),
	}, env...)}
	b.start()
	t.Cleanup(b.kill)
	return &faultBot{bot: b, srv: srv, url: fmt.Sprintf("http://127.0.0.1:%d/wxkf/", port), kfid: srv.OpenKfID()}
}

func (f *faultBot) notify() {
	f.t.Helper()
	require.NoError(f.t, f.srv.Notify(context.Background(), f.url, f.kfid))
}

func textsTo(srv *kftest.Server, user string) []string {
	var out []string
	for _, s := range srv.SentTo(srv.OpenKfID(), user) {
		out = append(out, s.Text)
	}
	return out
}

// waitTexts waits until user got exactly want, in order, and nothing more.
func (f *faultBot) waitTexts(user string, want []string, within time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for len(textsTo(f.srv, user)) < len(want) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	require.Equal(f.t, want, textsTo(f.srv, user), "replies to %s; bot log:\n%s", user, f.log())
}

func newSrv(t *testing.T, opts ...kftest.Option) *kftest.Server {
	srv := kftest.NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// The echo bot keeps its contract (its package doc) under faults, with no help
// from a new callback.
func TestEchoUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildEcho(t)

	t.Run("send outage with kill -9 inside it", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv)
		srv.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{pathSend, "/cgi-bin/media/upload"}})
		want := map[string][]string{}
		for i := range 6 {
			u := fmt.Sprintf("o%d", i%2)
			want[u] = append(want[u], fmt.Sprintf("%s-%d", u, i))
			srv.AddText(u, want[u][len(want[u])-1])
		}
		f.notify()
		time.Sleep(2 * time.Second)
		f.kill()
		f.start()
		time.Sleep(2 * time.Second)
		srv.SetFaults(kftest.Faults{})
		for u, w := range want {
			f.waitTexts(u, w, 70*time.Second)
		}
	})

	t.Run("pull cut short by kill -9", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv)
		srv.SetFaults(kftest.Faults{Latency: 3 * time.Second, Paths: []string{"/cgi-bin/kf/sync_msg"}})
		srv.AddText("s1", "anyone?")
		f.notify()
		time.Sleep(500 * time.Millisecond)
		f.kill()
		srv.SetFaults(kftest.Faults{})
		f.start()
		f.waitTexts("s1", []string{"anyone?"}, 20*time.Second)
	})

	t.Run("malformed and oversized pages", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv)
		srv.AddText("m1", "before")
		for _, raw := range []string{
			`{"origin":3,"msgtype":"text","external_userid":"m1","text":{"content":"no id"}}`,
			`{"msgid":42,"origin":3,"msgtype":"text","external_userid":"m1","text":{"content":"numeric id"}}`,
			`{"msgid":"` + strings.Repeat("x", 1100) + `","origin":3,"msgtype":"text","external_userid":"m1","text":{"content":"long id"}}`,
			`"not an object"`,
		} {
			srv.AddRawItem("", json.RawMessage(raw))
		}
		srv.AddMessage(kftest.Message{ExternalUserID: "m1", MsgType: "new_kind_of_message", Body: map[string]any{"x": 1}})
		srv.AddText("m1", "after")
		// Then a page too large for one answer: 100 texts of 90 KB (9 MB).
		big := strings.Repeat("大", 30000)
		for i := range 100 {
			srv.AddText(fmt.Sprintf("big%d", i), big)
		}
		srv.AddText("m1", "last")
		f.notify()
		got := func() []string { return textsTo(srv, "m1") }
		require.Eventually(t, func() bool { return len(got()) == 4 }, 60*time.Second, 50*time.Millisecond, "got %q; log:\n%s", got(), f.log())
		assert.Equal(t, "before", got()[0])
		assert.Equal(t, "after", got()[2])
		assert.Equal(t, "last", got()[3])
		for i := range 100 {
			assert.NotEmpty(t, srv.SentTo(srv.OpenKfID(), fmt.Sprintf("big%d", i)))
		}
	})

	t.Run("session back from a human without an event", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv)
		srv.AddServicer("agent", kftest.ServicerReceiving)
		srv.SetServiceState(srv.OpenKfID(), "h1", kftest.StateServicer, "agent")
		srv.AddText("h1", "to the human")
		f.notify()
		require.Eventually(t, func() bool { return len(srv.Rejected()) > 0 }, 10*time.Second, 10*time.Millisecond)
		srv.SetServiceState(srv.OpenKfID(), "h1", kftest.StateAssist, "")
		srv.AddText("h1", "back to the bot")
		f.notify()
		f.waitTexts("h1", []string{"back to the bot"}, 10*time.Second)
	})

	t.Run("flood with a slow handler", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv, "WECHATCOM_KF_ECHO_DELAY_MS=50")
		srv.SetFaults(kftest.Faults{Latency: 30 * time.Millisecond, Paths: []string{pathSend}})
		for i := range 3000 {
			srv.AddText("flooder", fmt.Sprintf("f%d", i))
		}
		f.notify()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		srv.AddText("quiet", "me too")
		f.notify()
		f.waitTexts("quiet", []string{"me too"}, 5*time.Second)
		t.Logf("answered after %s, with %d of the flood's replies sent", time.Since(start), len(srv.SentTo(srv.OpenKfID(), "flooder")))
	})

	t.Run("run tags: a retry and a kill never mix two runs", func(t *testing.T) {
		srv := newSrv(t)
		f := newFaultBot(t, bin, srv, "WECHATCOM_KF_ECHO_RUN_TAG=1")
		var b strings.Builder
		for i := range 150 {
			fmt.Fprintf(&b, "第%d句：一段很长的回答，需要分成几条消息发送。", i) // every part different
		}
		long := b.String() // 3 to 4 parts with tags
		var accepted atomic.Int32
		cancel := srv.Observe(func(r kftest.Record) {
			if r.Path == pathSend && r.ErrCode == 0 && r.Status == 200 && accepted.Add(1) == 1 {
				go srv.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{pathSend}})
			}
		})
		defer cancel()
		srv.AddText("t1", long)
		f.notify()
		require.Eventually(t, func() bool { return accepted.Load() >= 1 }, 10*time.Second, time.Millisecond)
		time.Sleep(500 * time.Millisecond) // the handler fails and is retried with a new tag
		f.kill()
		srv.SetFaults(kftest.Faults{})
		f.start()
		time.Sleep(3 * time.Second) // the restarted bot replays the message
		got := textsTo(srv, "t1")
		tags := map[string]bool{}
		seen := map[string]bool{}
		var joined strings.Builder
		for _, s := range got {
			require.True(t, strings.HasPrefix(s, "[run "), s)
			tags[s[:15]] = true
			assert.False(t, seen[s], "a part received twice")
			seen[s] = true
			joined.WriteString(s[15:])
		}
		assert.Len(t, tags, 1, "parts of two runs: %d parts, tags %v", len(got), tags)
		assert.True(t, strings.HasPrefix(long, joined.String()), "the parts received are the start of the text, in order")
	})

	t.Run("replica paused past its lease", func(t *testing.T) {
		addr, _, _ := redistest.Start(t)
		srv := newSrv(t)
		redisURL := "WECHATCOM_KF_REDIS_URL=redis://" + addr
		a := newFaultBot(t, bin, srv, redisURL, "WECHATCOM_KF_ECHO_DELAY_MS=40")
		b := newFaultBot(t, bin, srv, redisURL, "WECHATCOM_KF_ECHO_DELAY_MS=40")
		want := map[string][]string{}
		for i := range 12 {
			u := fmt.Sprintf("r%d", i%3)
			want[u] = append(want[u], fmt.Sprintf("%s-%d", u, i))
			srv.AddText(u, want[u][len(want[u])-1])
		}
		a.notify()
		require.Eventually(t, func() bool { return len(srv.Sent()) >= 2 }, 10*time.Second, time.Millisecond)
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGSTOP))
		time.Sleep(35 * time.Second) // the echo bot's lease is 30 s
		b.notify()
		require.Eventually(t, func() bool { return len(srv.Sent()) >= 12 }, 20*time.Second, 10*time.Millisecond, "log:\n%s", b.log())
		require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
		time.Sleep(2 * time.Second)
		for u, w := range want {
			assert.Equal(t, w, textsTo(srv, u), "customer %s: every message once, in order", u)
		}
		dups := 0
		for _, r := range srv.Rejected() {
			if strings.Contains(r.Msg, "duplicated") {
				dups++
			}
		}
		assert.LessOrEqual(t, dups, 16, "duplicate attempts: at most the sends in flight (one per worker)")
	})
}
