package kf

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/media"
)

// streamAnswer is about n bytes of Chinese paragraphs, the first one short; tag starts it.
func streamAnswer(tag string, n int) string {
	var b strings.Builder
	b.WriteString(tag + "您好！下面是详细的回答，分成很多段来讲。\n\n")
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strings.Repeat("这一段详细解释了一个问题的方方面面。", 6+i%5) + "\n\n")
	}
	return b.String()
}

// streamOf yields text in pieces of size bytes; before each piece, wait may block (it returns an
// error to end the stream with).
func streamOf(text string, size int, wait func(sent int) error) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for off := 0; off < len(text); off += size {
			if wait != nil {
				if err := wait(off); err != nil {
					yield("", err)
					return
				}
			}
			if !yield(text[off:min(off+size, len(text))], nil) {
				return
			}
		}
	}
}

// expectedParts is what one uninterrupted run of Stream sends for text (a Recorder run).
func expectedParts(t *testing.T, text string) []string {
	t.Helper()
	rec, err := NewRecorder(&Message{MsgID: "x", OpenKfID: "wk", ExternalUserID: "wm", Origin: OriginCustomer})
	require.NoError(t, err)
	_ = rec.Stream(context.Background(), streamOf(text, 100, nil))
	return rec.Texts()
}

// Through a Channel and kftest: a 15 000-byte answer goes out in exactly 5 sends of ≤ 2048 bytes,
// WeCom never answers 95001, and the first paragraph reaches WeCom while the text still arrives.
func TestStreamThroughChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	answer := streamAnswer("", 15000)
	seenEarly := make(chan bool, 1)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		early := false
		err := r.Stream(ctx, streamOf(answer, 7, func(int) error {
			if !early && len(e.srv.SentTo(m.OpenKfID, m.ExternalUserID)) > 0 {
				early = true
			}
			return nil
		}))
		seenEarly <- early
		return err
	})
	e.srv.AddText("alice", "请详细讲讲")
	e.notify()
	assert.True(t, <-seenEarly)
	sent := e.waitSent("alice", 5)
	e.settle()
	want := expectedParts(t, answer)
	require.Len(t, want, 5)
	assert.Equal(t, want, e.texts("alice"))
	for _, s := range sent {
		assert.LessOrEqual(t, len(s.Text), media.MaxTextBytes)
	}
	for _, rj := range e.srv.Rejected() {
		assert.NotEqual(t, 95001, rj.Code, "quota never overrun: %+v", rj)
	}
	assert.Zero(t, e.srv.QuotaLeft(e.srv.OpenKfID(), "alice"))
}

// A handler whose model fails transiently is retried. When the failure came before any part was
// sent, the rerun's answer goes out whole; when parts of the first answer were sent, the rerun
// (answering differently) only completes them: never a part of the second answer.
func TestStreamHandlerRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry)
	answers := map[string][]string{
		"early": {streamAnswer("A", 6000), streamAnswer("B", 6000)},
		"late":  {streamAnswer("C", 9000), streamAnswer("D", 9000)},
	}
	var runs atomic.Int32
	results := make(chan error, 4)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		n := runs.Add(1)
		a := answers[m.Text.Content]
		if n%2 == 1 {
			failAt := 10 // before any part
			if m.Text.Content == "late" {
				failAt = 4000 // after some parts
			}
			err := r.Stream(ctx, streamOf(a[0], 10, func(off int) error {
				if off >= failAt {
					return errors.New("model: 503")
				}
				return nil
			}))
			var se *StreamError
			if errors.As(err, &se) {
				return Retry(se)
			}
			return err
		}
		err := r.Stream(ctx, streamOf(a[1], 10, nil))
		results <- err
		return err
	})
	e.srv.AddText("ann", "early")
	e.notify()
	require.ErrorIs(t, <-results, ErrQuotaExceeded, "the rerun's answer, cut to fit")
	e.waitTexts("ann", expectedParts(t, answers["early"][1]), 5*time.Second)

	e.srv.AddText("bob", "late")
	e.notify()
	require.ErrorIs(t, <-results, ErrReplySuperseded)
	e.settle()
	first := expectedParts(t, answers["late"][0])
	got := e.texts("bob")
	require.GreaterOrEqual(t, len(got), 2)
	assert.Equal(t, first[:len(got)], got, "parts of the first answer only, nothing of the second")
	assert.False(t, strings.HasSuffix(got[len(got)-1], "…"), "cut short, not completed")
	assert.EqualValues(t, 4, runs.Load())
	assert.Zero(t, e.ch.Stats().DeadLetters)
}

// A crash after part 2: the next process's handler answers differently (the customer keeps parts
// 1 and 2 of the first answer, and gets nothing of the second) or the same (the customer gets the
// whole answer, each part once).
func TestStreamCrashReplay(t *testing.T) {
	t.Parallel()
	for _, same := range []bool{false, true} {
		name := "different answer"
		if same {
			name = "same answer"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			first := streamAnswer("A", 9000)
			second := first
			if !same {
				second = streamAnswer("B", 9000)
			}
			want := expectedParts(t, first)
			stuck := make(chan struct{})
			e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
				return r.Stream(ctx, streamOf(first, 10, func(int) error {
					if len(e.srv.SentTo(m.OpenKfID, m.ExternalUserID)) < 2 {
						return nil
					}
					select {
					case stuck <- struct{}{}:
					default:
					}
					<-ctx.Done() // the process dies here
					return ctx.Err()
				}))
			})
			e.srv.AddText("cat", "question")
			e.notify()
			<-stuck
			e.crashAndRestart()
			done := make(chan error, 1)
			e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
				err := r.Stream(ctx, streamOf(second, 3, nil))
				done <- err
				return err
			})
			err := <-done
			e.settle()
			if same {
				assert.ErrorIs(t, err, ErrQuotaExceeded)
				assert.Equal(t, want, e.texts("cat"))
				return
			}
			assert.ErrorIs(t, err, ErrReplySuperseded)
			assert.Equal(t, want[:2], e.texts("cat"))
		})
	}
}
