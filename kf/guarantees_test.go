package kf

// Delivery guarantees under faults: transient failures are retried until the horizon, a rerun
// never duplicates nor mixes a reply, an acknowledged callback is never stranded.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

const pathSend = "/cgi-bin/kf/send_msg"

// fastRetry makes handler reruns quick enough for tests.
var fastRetry = WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond)

// newProxiedEnv starts a Channel that reaches kftest through a proxy the test can make fail, with
// quick reruns and no retries in the client; opts restart it the same way.
func newProxiedEnv(t *testing.T) (*env, *wecomProxy, []ChannelOption) {
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	px := newWecomProxy(t, srv.URL())
	opts := []ChannelOption{fastRetry, WithClientOptions(WithBaseURL(px.URL()), WithRetry(1, time.Millisecond, time.Millisecond))}
	e.start(opts...)
	return e, px, opts
}

// crashAndRestart kills the Channel as kill -9 would and starts a new one on the same state.
func (e *env) crashAndRestart(opts ...ChannelOption) {
	e.t.Helper()
	e.hs.Close()
	e.ch.crash()
	e.start(opts...)
}

// texts returns the texts kftest accepted for user, in order.
func (e *env) texts(user string) []string {
	var out []string
	for _, s := range e.srv.SentTo(e.srv.OpenKfID(), user) {
		out = append(out, s.Text)
	}
	return out
}

// waitTexts waits until user has received exactly want (in this order), and fails on anything else.
func (e *env) waitTexts(user string, want []string, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := e.texts(user)
		if len(got) >= len(want) {
			assert.Equal(e.t, want, got, "replies to %s: every message once, in order", user)
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("replies to %s after %s: got %q, want %q; stats %+v", user, within, got, want, e.ch.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A send_msg outage of 8 s (WeCom answering -1, or dropping connections) loses nothing: every
// message is answered once, in order, after WeCom recovers, with no new callback. A restart in the
// middle of the outage loses nothing either.
func TestSendOutageRetriedUntilAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		faults  kftest.Faults
		restart bool
	}{
		{"busy", kftest.Faults{BusyRate: 1, Paths: []string{pathSend}}, false},
		{"dropped after processing", kftest.Faults{DropRate: 1, DropAfterProcessing: true, Paths: []string{pathSend}}, false},
		{"busy with a restart", kftest.Faults{BusyRate: 1, Paths: []string{pathSend}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, fastRetry, WithClientOptions(WithRetry(2, 10*time.Millisecond, 50*time.Millisecond)))
			e.ch.OnMessage(echo)
			want := map[string][]string{}
			e.srv.SetFaults(tc.faults)
			for i := range 9 {
				u := fmt.Sprintf("c%d", i%3)
				text := fmt.Sprintf("%s-%d", u, i)
				e.srv.AddText(u, text)
				want[u] = append(want[u], text)
			}
			e.notify()
			if tc.restart {
				time.Sleep(3 * time.Second)
				e.crashAndRestart(fastRetry)
				e.ch.OnMessage(echo)
				time.Sleep(5 * time.Second)
			} else {
				time.Sleep(8 * time.Second)
			}
			require.Zero(t, e.ch.Stats().Handled, "nothing could be answered during the outage: %+v", e.ch.Stats())
			e.srv.SetFaults(kftest.Faults{})
			for u, w := range want {
				e.waitTexts(u, w, 10*time.Second)
			}
			e.settle()
			assert.Zero(t, e.ch.Stats().DeadLetters)
		})
	}
}

// A handler that runs past its timeout, or fails on its own network call, is run again.
func TestHandlerTimeoutAndNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry, WithHandlerTimeout(100*time.Millisecond))
	var runs sync.Map
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		n, _ := runs.LoadOrStore(m.MsgID, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) == 1 {
			switch m.Text.Content {
			case "slow":
				<-ctx.Done() // a model call that hangs
				return ctx.Err()
			case "net":
				_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closedPortAddr(t))
				return fmt.Errorf("calling the model: %w", err)
			}
		}
		return r.Text(ctx, m.Text.Content)
	})
	e.srv.AddText("tia", "slow")
	e.srv.AddText("tia", "net")
	e.srv.AddText("tia", "fine")
	e.notify()
	e.waitTexts("tia", []string{"slow", "net", "fine"}, 10*time.Second)
	e.settle()
	s := e.ch.Stats()
	assert.EqualValues(t, 2, s.Retries)
	assert.Zero(t, s.DeadLetters)
}

func closedPortAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// A handler can ask for a retry, and for a minimum delay; the customer's next message waits behind
// it, another customer's does not.
func TestHandlerAsksForRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry)
	var first atomic.Bool
	var retriedAt, firstAt atomic.Int64
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text.Content == "later" {
			if !first.Swap(true) {
				firstAt.Store(time.Now().UnixNano())
				return RetryAfter(300*time.Millisecond, errors.New("model overloaded"))
			}
			retriedAt.Store(time.Now().UnixNano())
		}
		return r.Text(ctx, m.Text.Content)
	})
	e.srv.AddText("uma", "later")
	e.srv.AddText("uma", "after")
	e.srv.AddText("vic", "other")
	e.notify()
	e.waitTexts("vic", []string{"other"}, 5*time.Second)
	assert.Empty(t, e.texts("uma"), "uma's second message waits behind the retried one")
	e.waitTexts("uma", []string{"later", "after"}, 5*time.Second)
	assert.GreaterOrEqual(t, time.Duration(retriedAt.Load()-firstAt.Load()), 300*time.Millisecond)
}

// Past the retry horizon a message goes to the dead-letter hook with its last error, is counted,
// and only then marked done: the customer's next message is answered, and a restart does not
// bring the dead letter back. A permanent failure goes there at once.
func TestDeadLetterAfterHorizon(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	srv := kftest.NewServer(kftest.WithClock(clock.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	opts := []ChannelOption{WithChannelClock(clock.Now), fastRetry, WithRetryHorizon(10 * time.Minute)}
	e.start(opts...)
	var runs atomic.Int32
	handler := func(ctx context.Context, m *Message, r Replier) error {
		switch m.Text.Content {
		case "doomed":
			if runs.Add(1) == 3 {
				clock.Advance(11 * time.Minute) // the outage outlasts the horizon
			}
			return Retry(errors.New("model unreachable"))
		case "broken":
			return errors.New("template missing")
		}
		return r.Text(ctx, m.Text.Content)
	}
	e.ch.OnMessage(handler)
	type dead struct {
		text string
		err  error
	}
	deadCh := make(chan dead, 2)
	e.ch.OnDeadLetter(func(ctx context.Context, m *Message, err error) { deadCh <- dead{m.Text.Content, err} })
	srv.AddText("wes", "doomed")
	srv.AddText("wes", "next")
	srv.AddText("xia", "broken")
	e.notify()
	got := map[string]error{}
	for range 2 {
		select {
		case d := <-deadCh:
			got[d.text] = d.err
		case <-time.After(10 * time.Second):
			t.Fatalf("dead letters: %v; stats %+v", got, e.ch.Stats())
		}
	}
	assert.ErrorContains(t, got["doomed"], "model unreachable")
	assert.ErrorContains(t, got["broken"], "template missing")
	assert.EqualValues(t, 3, runs.Load(), "retried until the horizon")
	e.waitTexts("wes", []string{"next"}, 5*time.Second)
	e.settle()
	assert.EqualValues(t, 2, e.ch.Stats().DeadLetters)

	e.crashAndRestart(opts...)
	e.ch.OnMessage(handler)
	e.ch.Trigger(srv.OpenKfID(), "")
	time.Sleep(300 * time.Millisecond)
	e.settle()
	assert.EqualValues(t, 3, runs.Load(), "a dead letter is done: not run again after a restart")
	assert.Empty(t, deadCh)
}

// taggedAnswer is an LLM-like answer: its parts all carry a tag chosen afresh on every run.
func taggedAnswer(parts int) (tag string, texts []string) {
	tag = fmt.Sprintf("%08x", rand.Uint32())
	for i := range parts {
		texts = append(texts, fmt.Sprintf("[run %s] part %d %s", tag, i+1, strings.Repeat("x", 100+rand.IntN(50))))
	}
	return tag, texts
}

// tagOf returns the run tag of a sent text.
func tagOf(s string) string {
	i := strings.Index(s, "[run ")
	if i < 0 || len(s) < i+13 {
		return ""
	}
	return s[i+5 : i+13]
}

// A handler whose answer differs on every run (as a model's does) is rerun after a transient
// failure and after a crash; the customer never gets parts of two runs, and never a part twice.
// With the whole answer in one Replier call, the first run's answer is completed as recorded;
// with one call per part, the second run's extra parts are dropped and counted.
func TestRerunNeverMixesReplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		oneCall  bool
		crash    bool
		complete bool // the customer gets the first run's whole answer
	}{
		{"one call, retry", true, false, true},
		{"one call, crash", true, true, true},
		{"call per part, retry", false, false, false},
		{"call per part, crash", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, px, opts := newProxiedEnv(t)
			srv := e.srv
			var firstTag atomic.Value
			handler := func(ctx context.Context, m *Message, r Replier) error {
				tag, parts := taggedAnswer(3 + rand.IntN(2))
				firstTag.CompareAndSwap(nil, tag)
				if tc.oneCall {
					// One Text call whose text splits into several messages.
					return r.Text(ctx, strings.Join(padParts(parts), ""))
				}
				for _, p := range parts {
					if err := r.Text(ctx, p); err != nil {
						return err
					}
				}
				return nil
			}
			e.ch.OnMessage(handler)
			// The second send fails: dropped on the way (never reaches kftest).
			var sends atomic.Int32
			px.add(func(path string, _ []byte) (int, string, bool) {
				if path == pathSend && sends.Add(1) == 2 {
					return 502, "bad gateway", true
				}
				return 0, "", false
			})
			if tc.crash {
				px.add(func(path string, _ []byte) (int, string, bool) {
					if path == pathSend && sends.Load() >= 2 {
						return 502, "bad gateway", true // WeCom unreachable until the restart
					}
					return 0, "", false
				})
			}
			srv.AddText("yan", "question")
			e.notify()
			require.Eventually(t, func() bool { return sends.Load() >= 2 }, 5*time.Second, time.Millisecond)
			if tc.crash {
				e.crashAndRestart(opts...)
				px.clear()
				e.ch.OnMessage(handler)
			}
			e.settleWithin(10 * time.Second)
			got := e.texts("yan")
			require.NotEmpty(t, got)
			tags := map[string]bool{}
			seen := map[string]bool{}
			for _, s := range got {
				tags[tagOf(s)] = true
				assert.False(t, seen[s], "a part sent twice: %q", s)
				seen[s] = true
			}
			assert.Len(t, tags, 1, "parts of two runs: %q", got)
			assert.True(t, tags[firstTag.Load().(string)], "the first run's answer is the one sent")
			if tc.complete {
				assert.GreaterOrEqual(t, len(got), 3, "completed from the record")
			} else {
				// The first run's calls are one message each: each is recorded once WeCom accepts it
				// (a retry in the same process also knows the one that failed). The rerun sends what
				// the first run had started and drops its own further parts: the cut is counted.
				assert.NotEmpty(t, got)
				assert.LessOrEqual(t, len(got), 2, "the rerun's own parts are not sent after the first run's")
				assert.Positive(t, e.ch.Stats().RepliesSuperseded)
			}
		})
	}
}

// padParts pads each part to 2000 bytes so that the joined text splits back into the same parts.
func padParts(parts []string) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p + strings.Repeat(" ", 2000-len(p)) + "\n"
	}
	return out
}

// settleWithin is settle with a longer bound.
func (e *env) settleWithin(d time.Duration) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		s := e.ch.Stats()
		return s.InFlight == 0 && s.QueueDepth == 0 && s.Handled > 0
	}, d, 5*time.Millisecond, "stats %+v", e.ch.Stats())
}

// A callback answered 200 whose pull was cut short by a crash is not stranded: the restarted
// Channel pulls every known account without waiting for a new callback.
func TestCrashDuringPullNotStranded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	e.srv.SetFaults(kftest.Faults{Latency: 3 * time.Second, Paths: []string{"/cgi-bin/kf/sync_msg"}})
	e.srv.AddText("zed", "hello?")
	e.notify()
	time.Sleep(500 * time.Millisecond) // the pull is under way
	e.crashAndRestart()
	e.srv.SetFaults(kftest.Faults{})
	e.ch.OnMessage(echo)
	e.waitTexts("zed", []string{"hello?"}, 10*time.Second)
}

// Shutdown during a pull leaves the round owed, and the next start pulls it.
func TestShutdownDuringPullKeepsRoundOwed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	e.srv.SetFaults(kftest.Faults{Latency: time.Second, Paths: []string{"/cgi-bin/kf/sync_msg"}})
	e.srv.AddText("amy", "are you there?")
	e.notify()
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.hs.Close()
	require.NoError(t, e.ch.Shutdown(ctx))
	e.srv.SetFaults(kftest.Faults{})
	e.start()
	e.ch.OnMessage(echo)
	e.waitTexts("amy", []string{"are you there?"}, 10*time.Second)
}
