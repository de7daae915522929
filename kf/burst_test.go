package kf

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
