package llm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// fakeReplier is a kf.Replier that keeps WeCom's text rules as kf's Replier does: messages of at
// most 2048 bytes, at most quota of them, a longer text fitted with "…" and a ReplyError.
type fakeReplier struct {
	kf.Replier // other methods are not used by ReplyStream: calling one panics
	quota      int
	msgs       []string
	failAt     int   // the send (1-based) that fails with failErr; 0 = none
	failErr    error // default kf.ErrHumanServicer
	onText     func()
}

func (f *fakeReplier) QuotaLeft() int { return f.quota }

func (f *fakeReplier) Text(ctx context.Context, s string) error {
	if f.onText != nil {
		f.onText()
	}
	if f.quota == 0 {
		return &kf.ReplyError{Reason: kf.ErrQuotaExceeded, Dropped: 1}
	}
	parts, truncated := media.FitText(s, media.MaxTextBytes, f.quota, "…")
	for i, p := range parts {
		if f.failAt == len(f.msgs)+1 {
			err := f.failErr
			if err == nil {
				err = kf.ErrHumanServicer
			}
			return &kf.ReplyError{Reason: err, Sent: i, Dropped: len(parts) - i}
		}
		f.msgs = append(f.msgs, p)
		f.quota--
	}
	if truncated {
		return &kf.ReplyError{Reason: kf.ErrQuotaExceeded, Sent: len(parts)}
	}
	return nil
}

// streamOf returns a stream func that sends text in deltas of n runes, calling between(i) before
// delta i.
func streamOf(text string, n int, between func(i int)) func(func(string)) (string, error) {
	return func(onDelta func(string)) (string, error) {
		i := 0
		for rest := text; rest != ""; i++ {
			k := 0
			for j := 0; j < n && k < len(rest); j++ {
				_, size := utf8.DecodeRuneInString(rest[k:])
				k += size
			}
			if between != nil {
				between(i)
			}
			onDelta(rest[:k])
			rest = rest[k:]
		}
		return text, nil
	}
}

func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

func TestReplyStreamShortAnswerIsOneMessage(t *testing.T) {
	t.Parallel()
	r := &fakeReplier{quota: 5}
	require.NoError(t, llm.ReplyStream(context.Background(), r, streamOf("  你好！有什么可以帮您？\n", 1, nil)))
	assert.Equal(t, []string{"你好！有什么可以帮您？"}, r.msgs)
}

// The first paragraph goes out while the rest is still being generated.
func TestReplyStreamSendsFirstParagraphEarly(t *testing.T) {
	t.Parallel()
	p1 := "这是第一段回答，它足够长，应该在生成过程中就先发出去。"
	p2 := "第二段。"
	answer := p1 + "\n\n" + p2
	r := &fakeReplier{quota: 5}
	sentBeforeEnd := -1
	stream := streamOf(answer, 2, func(i int) {
		if i == utf8.RuneCountInString(answer)/2-1 { // the last delta
			sentBeforeEnd = len(r.msgs)
		}
	})
	require.NoError(t, llm.ReplyStream(context.Background(), r, stream))
	assert.Equal(t, 1, sentBeforeEnd, "p1 was sent before the stream ended")
	assert.Equal(t, []string{p1, p2}, r.msgs)
}

// Short paragraphs are gathered: a tiny first line does not cost a message of its own, and later
// paragraphs wait for FlushBytes.
func TestReplyStreamGathersShortParagraphs(t *testing.T) {
	t.Parallel()
	answer := "好的！\n\n" + strings.Repeat("一段不长的话。\n\n", 10) + "结束。"
	r := &fakeReplier{quota: 5}
	require.NoError(t, llm.ReplyStream(context.Background(), r, streamOf(answer, 3, nil)))
	require.Len(t, r.msgs, 2)
	assert.True(t, strings.HasPrefix(r.msgs[0], "好的！\n\n一段不长的话。"), r.msgs[0])
	assert.Equal(t, squeeze(answer), squeeze(strings.Join(r.msgs, "")))
}

// A 20 KB answer fills the 5 messages (each ≤ 2048 bytes), the last cut with the marker; the
// quota is never overrun and one message is always kept for the end.
func TestReplyStreamLongAnswerFitsQuota(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; b.Len() < 20000; i++ {
		b.WriteString(strings.Repeat("这一段讲的是一个很长的故事。", 8))
		b.WriteString("\n\n")
	}
	answer := b.String()
	r := &fakeReplier{quota: 5}
	minQuotaSeenBeforeEnd := 5
	stream := func(onDelta func(string)) (string, error) {
		out, err := streamOf(answer, 4, func(int) { minQuotaSeenBeforeEnd = min(minQuotaSeenBeforeEnd, r.quota) })(onDelta)
		minQuotaSeenBeforeEnd = min(minQuotaSeenBeforeEnd, r.quota)
		return out, err
	}
	err := llm.ReplyStream(context.Background(), r, stream)
	var re *kf.ReplyError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, kf.ErrQuotaExceeded)
	assert.Equal(t, 1, minQuotaSeenBeforeEnd, "one message kept for the remainder while streaming")
	require.Len(t, r.msgs, 5)
	for i, m := range r.msgs {
		assert.LessOrEqual(t, len(m), media.MaxTextBytes, "message %d", i)
		assert.True(t, utf8.ValidString(m))
		if i > 0 && i < 4 {
			assert.Greater(t, len(m), media.MaxTextBytes/2, "later messages are well filled (%d)", i)
		}
	}
	assert.Equal(t, strings.Repeat("这一段讲的是一个很长的故事。", 8), r.msgs[0], "the first paragraph went out early")
	last := r.msgs[4]
	assert.True(t, strings.HasSuffix(last, "…"))
	joined := squeeze(strings.Join(r.msgs, ""))
	assert.True(t, strings.HasPrefix(squeeze(answer), strings.TrimSuffix(joined, "…")))
}

// One paragraph with no blank line at all is still sent in full messages, cut at sentence ends.
func TestReplyStreamWallOfText(t *testing.T) {
	t.Parallel()
	answer := strings.Repeat("This is a sentence that goes on. ", 150) // 4 950 bytes
	r := &fakeReplier{quota: 5}
	require.NoError(t, llm.ReplyStream(context.Background(), r, streamOf(answer, 5, nil)))
	require.Len(t, r.msgs, 3)
	for _, m := range r.msgs[:2] {
		assert.True(t, strings.HasSuffix(m, "goes on."), "cut at a sentence end: %q", m[len(m)-20:])
	}
	assert.Equal(t, squeeze(answer), squeeze(strings.Join(r.msgs, "")))
}

func TestReplyStreamQuotaEdges(t *testing.T) {
	t.Parallel()
	answer := strings.Repeat("第一段，很长很长很长很长很长很长很长很长。\n\n", 4)
	t.Run("one left: nothing early, all at the end", func(t *testing.T) {
		t.Parallel()
		r := &fakeReplier{quota: 1}
		early := 0
		require.NoError(t, llm.ReplyStream(context.Background(), r, streamOf(answer, 2, func(int) { early = max(early, len(r.msgs)) })))
		assert.Zero(t, early)
		require.Len(t, r.msgs, 1)
		assert.Equal(t, strings.TrimSpace(answer), r.msgs[0])
	})
	t.Run("none left", func(t *testing.T) {
		t.Parallel()
		r := &fakeReplier{quota: 0}
		err := llm.ReplyStream(context.Background(), r, streamOf(answer, 2, nil))
		assert.ErrorIs(t, err, kf.ErrQuotaExceeded)
		assert.Empty(t, r.msgs)
	})
}

func TestReplyStreamStreamFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("model overloaded")
	p1 := "第一段已经生成完毕，而且足够长，会先发出去。"
	r := &fakeReplier{quota: 5}
	err := llm.ReplyStream(context.Background(), r, func(onDelta func(string)) (string, error) {
		onDelta(p1 + "\n\n")
		onDelta("第二段只生成了一半")
		return "", boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, []string{p1}, r.msgs, "the half paragraph is not sent")
	assert.Equal(t, 4, r.quota, "quota left for an apology")
}

func TestReplyStreamSendFails(t *testing.T) {
	t.Parallel()
	answer := strings.Repeat("一段足够长的话，用来触发提前发送的逻辑。\n\n", 200)
	r := &fakeReplier{quota: 5, failAt: 1}
	calls := 0
	r.onText = func() { calls++ }
	consumed := false
	err := llm.ReplyStream(context.Background(), r, func(onDelta func(string)) (string, error) {
		out, err := streamOf(answer, 3, nil)(onDelta)
		consumed = true
		return out, err
	})
	assert.ErrorIs(t, err, kf.ErrHumanServicer)
	assert.True(t, consumed)
	assert.Equal(t, 1, calls, "no send after the first failure")
	assert.Empty(t, r.msgs)
}

func TestReplyStreamEmptyAndNoDeltas(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", " \n\n \t"} {
		r := &fakeReplier{quota: 5}
		err := llm.ReplyStream(context.Background(), r, streamOf(s, 1, nil))
		assert.ErrorIs(t, err, llm.ErrEmptyAnswer)
		assert.Empty(t, r.msgs)
	}
	r := &fakeReplier{quota: 5}
	require.NoError(t, llm.ReplyStream(context.Background(), r, func(func(string)) (string, error) { return "whole", nil }))
	assert.Equal(t, []string{"whole"}, r.msgs)
}

// FuzzReplyStream: whatever the answer and however it is cut into deltas, every message is valid
// UTF-8 of 1..2048 bytes, at most 5 are sent, and the text is kept (whitespace aside) — in full
// when it fits, as a prefix ending in the marker when not.
func FuzzReplyStream(f *testing.F) {
	f.Add("hello\n\nworld", uint8(1), uint8(5))
	f.Add(strings.Repeat("长句子。\n\n", 600), uint8(7), uint8(5))
	f.Add(strings.Repeat("x", 9000), uint8(200), uint8(3))
	f.Add("👩‍👩‍👧\n\n👩‍👩‍👧 e\u0301\u0301", uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, answer string, n, quota uint8) {
		answer = strings.ToValidUTF8(answer, "\uFFFD")
		r := &fakeReplier{quota: int(quota % 6)}
		start := r.quota
		err := llm.ReplyStream(context.Background(), r, streamOf(answer, int(n%64)+1, nil))
		if len(r.msgs) > start {
			t.Fatalf("%d messages with a quota of %d", len(r.msgs), start)
		}
		for _, m := range r.msgs {
			if m == "" || len(m) > media.MaxTextBytes || !utf8.ValidString(m) {
				t.Fatalf("bad message %q", m)
			}
		}
		got, want := squeeze(strings.Join(r.msgs, "")), squeeze(answer)
		switch {
		case err == nil:
			if got != want {
				t.Fatalf("text changed:\n got %q\nwant %q", got, want)
			}
		case errors.Is(err, llm.ErrEmptyAnswer):
			if want != "" || len(r.msgs) > 0 {
				t.Fatal("empty answer with text")
			}
		case errors.Is(err, kf.ErrQuotaExceeded):
			if !strings.HasPrefix(want, strings.TrimSuffix(got, "…")) {
				t.Fatalf("not a prefix:\n got %q\nwant %q", got, want)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func BenchmarkReplyStream(b *testing.B) {
	answer := strings.Repeat("这一段讲的是一个很长的故事，一直讲下去。\n\n", 150) // ~9 KB
	stream := streamOf(answer, 3, nil)
	b.ReportAllocs()
	for b.Loop() {
		r := &fakeReplier{quota: 5}
		if err := llm.ReplyStream(context.Background(), r, stream); err != nil && !errors.Is(err, kf.ErrQuotaExceeded) {
			b.Fatal(err)
		}
	}
}
