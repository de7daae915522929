package kf_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// customerText is a customer's text message for Recorder tests.
func customerText(text string) *kf.Message {
	return &kf.Message{MsgID: "msg-1", OpenKfID: "wk1", ExternalUserID: "wm1", Origin: kf.OriginCustomer,
		MsgType: kf.MsgTypeText, Body: kf.Body{Text: &kf.Text{Content: text}}}
}

func newRecorder(t testing.TB, opts ...kf.ChannelOption) *kf.Recorder {
	t.Helper()
	rec, err := kf.NewRecorder(customerText("question"), opts...)
	require.NoError(t, err)
	return rec
}

// chunks yields text in pieces of n bytes (cutting runes apart when n is small, as a byte stream
// can), then an error if fail is not nil.
func chunks(text string, n int, fail error) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for len(text) > 0 {
			k := min(n, len(text))
			if !yield(text[:k], nil) {
				return
			}
			text = text[k:]
		}
		if fail != nil {
			yield("", fail)
		}
	}
}

// longAnswer is about n bytes of Chinese paragraphs, the first one short.
func longAnswer(n int) (first, all string) {
	first = "您好！下面是详细的回答，分成很多段来讲。"
	var b strings.Builder
	b.WriteString(first + "\n\n")
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strings.Repeat("这一段详细解释了一个问题的方方面面。", 6+i%5) + "\n\n")
	}
	return first, b.String()
}

// squeeze drops white space, to compare texts whose paragraph breaks were trimmed at cuts.
func squeeze(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// A 15 000-byte answer, streamed in pieces of 8 bytes and of 1 byte (runes cut apart): the same
// 5 messages, each ≤ 2048 bytes, the first paragraph alone and sent while the text still arrived,
// the last cut with the marker, and what was sent a prefix of the answer.
func TestStreamLongAnswer(t *testing.T) {
	t.Parallel()
	first, answer := longAnswer(15000)
	require.GreaterOrEqual(t, len(answer), 15000)
	var runs [][]string
	for _, size := range []int{8, 1, 5000} {
		rec := newRecorder(t)
		sentWhileStreaming := false
		deltas := func(yield func(string, error) bool) {
			for d, err := range chunks(answer, size, nil) {
				if len(rec.Messages()) > 0 {
					sentWhileStreaming = true
				}
				if !yield(d, err) {
					return
				}
			}
		}
		err := rec.Stream(context.Background(), deltas)
		var re *kf.ReplyError
		require.ErrorAs(t, err, &re, "size %d", size)
		assert.ErrorIs(t, err, kf.ErrQuotaExceeded)
		assert.Equal(t, 5, re.Sent)
		assert.True(t, sentWhileStreaming, "size %d: the first part went out before the text ended", size)
		texts := rec.Texts()
		require.Len(t, texts, 5, "size %d", size)
		assert.Equal(t, first, texts[0])
		var joined strings.Builder
		for _, s := range texts {
			assert.LessOrEqual(t, len(s), media.MaxTextBytes)
			assert.True(t, utf8.ValidString(s))
			joined.WriteString(s)
		}
		assert.True(t, strings.HasSuffix(texts[4], "…"))
		assert.True(t, strings.HasPrefix(squeeze(answer), strings.TrimSuffix(squeeze(joined.String()), "…")))
		assert.Zero(t, rec.QuotaLeft())
		runs = append(runs, texts)
	}
	assert.Equal(t, runs[0], runs[1], "how the text is cut into deltas does not change the messages")
	assert.Equal(t, runs[0], runs[2])
}

// A short answer is one message, sent at the end, and Stream returns nil.
func TestStreamShortAnswer(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	require.NoError(t, rec.Stream(context.Background(), chunks("  你好，有什么可以帮您？\n", 2, nil)))
	assert.Equal(t, []string{"你好，有什么可以帮您？"}, rec.Texts())
	assert.Equal(t, 4, rec.QuotaLeft())

	empty := newRecorder(t)
	require.NoError(t, empty.Stream(context.Background(), chunks(" \n\n ", 1, nil)))
	require.NoError(t, empty.Stream(context.Background(), nil))
	assert.Empty(t, empty.Messages(), "an empty answer sends nothing")
}

// Text without paragraph ends and with long grapheme clusters (emoji ZWJ sequences, combining
// marks): full-message cuts never fall inside a cluster.
func TestStreamNeverCutsAGrapheme(t *testing.T) {
	t.Parallel()
	unit := "👩‍👩‍👧‍👦" + "é" + "a\u0301\u0302\u0303" + "🇨🇳" + "字"
	answer := strings.Repeat(unit, 12000/len(unit))
	for _, size := range []int{1, 7, 1000} {
		rec := newRecorder(t)
		err := rec.Stream(context.Background(), chunks(answer, size, nil))
		require.ErrorIs(t, err, kf.ErrQuotaExceeded)
		texts := rec.Texts()
		require.Len(t, texts, 5)
		off := 0
		for i, s := range texts {
			s = strings.TrimSuffix(s, "…")
			require.True(t, strings.HasPrefix(answer[off:], s), "part %d is the next piece of the answer", i)
			off += len(s)
			assert.True(t, isClusterBoundary(answer, off), "size %d: part %d ends inside a grapheme cluster", size, i)
		}
	}
}

func isClusterBoundary(s string, off int) bool {
	pos := 0
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		if pos == off {
			return true
		}
		_, to := g.Positions()
		pos = to
	}
	return pos == off
}

// The last message of the quota is kept for the remainder: with 2 left, one early part at most;
// with 1 left, one message at the end.
func TestStreamKeepsTheLastMessage(t *testing.T) {
	t.Parallel()
	_, answer := longAnswer(6000)
	for _, left := range []int{1, 2, 3} {
		rec := newRecorder(t)
		require.NoError(t, rec.SetQuotaLeft(left))
		n := 0
		err := rec.Stream(context.Background(), func(yield func(string, error) bool) {
			for d := range chunks(answer, 16, nil) {
				n += len(d)
				if !yield(d, nil) {
					return
				}
			}
		})
		require.ErrorIs(t, err, kf.ErrQuotaExceeded)
		require.Len(t, rec.Texts(), left)
		assert.True(t, strings.HasSuffix(rec.Texts()[left-1], "…"))
		if left == 1 {
			assert.Less(t, n, 2*media.MaxTextBytes, "stops reading once the quota cannot carry more")
		}
	}
	rec := newRecorder(t)
	require.NoError(t, rec.SetQuotaLeft(0))
	read := false
	err := rec.Stream(context.Background(), func(yield func(string, error) bool) { read = true; yield("x", nil) })
	assert.ErrorIs(t, err, kf.ErrQuotaExceeded)
	assert.False(t, read, "nothing to send: the source is not read")
}

// The source fails: what was sent stays sent, the rest is dropped, the last message is free.
func TestStreamSourceFails(t *testing.T) {
	t.Parallel()
	_, answer := longAnswer(3000)
	boom := errors.New("model: connection reset")

	rec := newRecorder(t)
	err := rec.Stream(context.Background(), chunks(answer[:2600], 10, boom))
	var se *kf.StreamError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, len(rec.Texts()), se.Sent)
	require.Positive(t, se.Sent)
	require.NoError(t, rec.Text(context.Background(), "抱歉，回答中断了。"))
	assert.Equal(t, "抱歉，回答中断了。", rec.Texts()[len(rec.Texts())-1])

	early := newRecorder(t)
	err = early.Stream(context.Background(), chunks("半句话", 3, boom))
	require.ErrorAs(t, err, &se)
	assert.Zero(t, se.Sent)
	assert.Empty(t, early.Messages(), "an unfinished paragraph is not sent")
}

// A human takes the session in the middle of the stream: the Replier refuses, and the stream stops
// reading.
func TestStreamStopsWhenRefused(t *testing.T) {
	t.Parallel()
	_, answer := longAnswer(8000)
	rec := newRecorder(t)
	read := 0
	err := rec.Stream(context.Background(), func(yield func(string, error) bool) {
		for d := range chunks(answer, 32, nil) {
			read += len(d)
			if len(rec.Messages()) == 1 {
				rec.SetState(kf.ServiceStateServicer, "zhangsan")
			}
			if !yield(d, nil) {
				return
			}
		}
	})
	assert.ErrorIs(t, err, kf.ErrHumanServicer)
	assert.Len(t, rec.Messages(), 1)
	assert.Less(t, read, len(answer))
}

// startOf returns where parts[k] starts in text, the parts being consecutive pieces of it.
func startOf(text string, parts []string, k int) int {
	off := 0
	for i := range k {
		off += strings.Index(text[off:], parts[i]) + len(parts[i])
	}
	return off + strings.Index(text[off:], parts[k])
}

// A rerun of a stream, as after a transient failure or a crash: with a different answer it only
// completes the recorded parts (never a part of its own), with the same answer it continues where
// the first run stopped and the customer gets what one uninterrupted run sends.
func TestStreamRerun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, answerA := longAnswer(9000)
	_, answerB := longAnswer(9500)
	answerB = "另一个回答：" + answerB

	whole := newRecorder(t)
	_ = whole.Stream(ctx, chunks(answerA, 64, nil))
	want := whole.Texts()
	require.Len(t, want, 5)

	t.Run("source fails after two parts, rerun answers differently", func(t *testing.T) {
		rec := newRecorder(t)
		cut := startOf(answerA, want, 2) // the text up to part 3 arrives, then the source fails
		err := rec.Stream(ctx, chunks(answerA[:cut], 64, errors.New("timeout")))
		var se *kf.StreamError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 2, se.Sent)
		rec.Rerun()
		err = rec.Stream(ctx, chunks(answerB, 64, nil))
		assert.ErrorIs(t, err, kf.ErrReplySuperseded)
		assert.Equal(t, want[:2], rec.Texts(), "parts 1-2 of the first answer, nothing of the second")
		assert.ErrorIs(t, rec.Text(ctx, "B's apology"), kf.ErrReplySuperseded)
	})

	t.Run("send fails on part three, rerun answers differently", func(t *testing.T) {
		rec := newRecorder(t)
		require.NoError(t, rec.Text(ctx, "稍等，我想一想。"))
		rec.FailSends(0, 0, -1) // parts 1 and 2 go out; part 3 meets WeCom busy
		err := rec.Stream(ctx, chunks(answerA, 64, nil))
		require.Error(t, err)
		require.Error(t, rec.Failure(), "a transient failure: the Channel reruns the handler")
		rec.Rerun()
		require.NoError(t, rec.Text(ctx, "稍等，我想一想。"))
		err = rec.Stream(ctx, chunks(answerB, 64, nil))
		assert.ErrorIs(t, err, kf.ErrReplySuperseded)
		assert.Equal(t, append([]string{"稍等，我想一想。"}, want[:3]...), rec.Texts(),
			"the recorded part 3 is completed; nothing of the second answer")
	})

	t.Run("same answer continues", func(t *testing.T) {
		rec := newRecorder(t)
		cut := startOf(answerA, want, 3)
		_ = rec.Stream(ctx, chunks(answerA[:cut], 64, errors.New("timeout")))
		require.Len(t, rec.Texts(), 3)
		rec.Rerun()
		require.ErrorIs(t, rec.Stream(ctx, chunks(answerA, 1, nil)), kf.ErrQuotaExceeded)
		assert.Equal(t, want, rec.Texts(), "each message once, as one run sends them")
		rec.Rerun()
		require.NoError(t, rec.Stream(ctx, chunks(answerA, 512, nil)), "a complete stream replays")
		assert.Equal(t, want, rec.Texts())
	})

	t.Run("completed stream, rerun answers differently", func(t *testing.T) {
		rec := newRecorder(t)
		_ = rec.Stream(ctx, chunks(answerA, 64, nil))
		rec.Rerun()
		read := 0
		err := rec.Stream(ctx, func(yield func(string, error) bool) {
			for d := range chunks(answerB, 8, nil) {
				read += len(d)
				if !yield(d, nil) {
					return
				}
			}
		})
		assert.ErrorIs(t, err, kf.ErrReplySuperseded)
		assert.Equal(t, want, rec.Texts())
		assert.Less(t, read, 64, "the rerun stops reading as soon as its text differs")
	})

	t.Run("short answer ending with its last part", func(t *testing.T) {
		text := strings.Repeat("第一段的内容比较长，足够单独发送。", 4) + "\n\n"
		rec := newRecorder(t)
		require.NoError(t, rec.Stream(ctx, chunks(text, 5, nil)))
		require.NoError(t, rec.Text(ctx, "还有别的问题吗？"))
		sent := rec.Texts()
		require.Len(t, sent, 2)
		rec.Rerun()
		require.NoError(t, rec.Stream(ctx, chunks(text, 3, nil)), "the end of the stream is recorded")
		require.NoError(t, rec.Text(ctx, "还有别的问题吗？"))
		assert.Equal(t, sent, rec.Texts())
	})
}
