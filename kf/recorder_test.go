package kf_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// The Recorder applies the real Replier's rules: text split at 2048 bytes and fitted into the
// quota with the marker, 5 messages at most, images fitted before "upload", nothing sent while a
// human servicer has the session, Handoff changing the state.
func TestRecorderRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := newRecorder(t, kf.WithTruncationMarker("[…]"))
	long := strings.Repeat("字", 3000) // 9000 bytes: 5 messages
	require.NoError(t, rec.Text(ctx, "hello"))
	err := rec.Text(ctx, long)
	var re *kf.ReplyError
	require.ErrorAs(t, err, &re)
	assert.ErrorIs(t, err, kf.ErrQuotaExceeded)
	assert.Equal(t, 4, re.Sent)
	texts := rec.Texts()
	require.Len(t, texts, 5)
	for _, s := range texts {
		assert.LessOrEqual(t, len(s), media.MaxTextBytes)
	}
	assert.True(t, strings.HasSuffix(texts[4], "[…]"))
	assert.ErrorIs(t, rec.Text(ctx, "one more"), kf.ErrQuotaExceeded)
	assert.Zero(t, rec.QuotaLeft())

	img := newRecorder(t)
	require.NoError(t, img.Image(ctx, testJPEG(t)))
	msgs := img.Messages()
	require.Len(t, msgs, 1)
	require.NotNil(t, msgs[0].Image)
	assert.Equal(t, kf.MsgTypeImage, msgs[0].MsgType)
	assert.Equal(t, "image.jpg", msgs[0].Filename)
	assert.NotEmpty(t, msgs[0].Media)
	assert.Error(t, img.Image(ctx, []byte("not an image")))
	require.NoError(t, img.Menu(ctx, kf.NewMenu("pick", []kf.MenuItem{kf.MenuClick("a", "A")}, "")), "a failed call does not upset the next")
	assert.Equal(t, "A", img.Messages()[1].MsgMenu.List[0].Click.Content)
	assert.ErrorIs(t, img.Menu(ctx, kf.NewMenu("", nil, "")), kf.ErrInvalidArgument, "checked as before a real send")

	human := newRecorder(t)
	human.SetState(kf.ServiceStateServicer, "zhangsan")
	assert.ErrorIs(t, human.Text(ctx, "hi"), kf.ErrHumanServicer)
	assert.Empty(t, human.Messages())

	off := newRecorder(t)
	require.NoError(t, off.Handoff(ctx, ""))
	st, _ := off.State()
	assert.Equal(t, kf.ServiceStateQueued, st)
	assert.ErrorIs(t, off.Text(ctx, "still there?"), kf.ErrSessionQueued)

	anon, err := kf.NewRecorder(&kf.Message{MsgType: kf.MsgTypeText})
	require.NoError(t, err)
	assert.ErrorIs(t, anon.Text(ctx, "to whom?"), kf.ErrInvalidArgument)
	_, err = kf.NewRecorder(nil)
	assert.ErrorIs(t, err, kf.ErrInvalidArgument)
}

// A transient send failure is reported by Failure, and Rerun replays the record: nothing is sent
// twice, and a rerun that answers differently is superseded.
func TestRecorderRerun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	handler := func(answer string) kf.Handler {
		return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
			if err := r.Text(ctx, "收到"); err != nil {
				return err
			}
			return r.Text(ctx, answer)
		}
	}
	m := customerText("hi")
	rec, err := kf.NewRecorder(m)
	require.NoError(t, err)
	rec.FailSends(0, -1)
	err = handler("answer one")(ctx, m, rec)
	require.Error(t, err)
	require.Error(t, rec.Failure())
	assert.Equal(t, []string{"收到"}, rec.Texts())

	rec.Rerun()
	assert.NoError(t, rec.Failure())
	require.NoError(t, handler("answer two")(ctx, m, rec), "the second call replays the recorded one")
	assert.ErrorIs(t, rec.Text(ctx, "extra"), kf.ErrReplySuperseded, "beyond the record, after a different call")
	assert.Equal(t, []string{"收到", "answer one"}, rec.Texts())
	rec.Rerun()
	require.NoError(t, handler("answer one")(ctx, m, rec))
	require.NoError(t, rec.Text(ctx, "extra"), "the same calls: the rerun goes on")
	assert.Equal(t, []string{"收到", "answer one", "extra"}, rec.Texts())
}

// ExampleRecorder tests a handler without a server: the Recorder is the Channel's Replier over an
// in-memory WeCom.
func ExampleRecorder() {
	greet := func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		if err := r.Text(ctx, "您好，"+m.Text.Content); err != nil {
			return err
		}
		return r.Text(ctx, strings.Repeat("很长的介绍。", 1000)) // 18 000 bytes: cut to fit
	}
	m := &kf.Message{MsgID: "m1", OpenKfID: "wk1", ExternalUserID: "wm1", Origin: kf.OriginCustomer,
		MsgType: kf.MsgTypeText, Body: kf.Body{Text: &kf.Text{Content: "小明"}}}
	rec, err := kf.NewRecorder(m)
	if err != nil {
		panic(err)
	}
	err = greet(context.Background(), m, rec)
	fmt.Println(len(rec.Texts()), "messages; first:", rec.Texts()[0])
	fmt.Println("cut to fit the quota:", errors.Is(err, kf.ErrQuotaExceeded))
	// Output:
	// 5 messages; first: 您好，小明
	// cut to fit the quota: true
}

// ExampleReplier_Stream sends a model's answer while it is being generated.
func ExampleReplier_Stream() {
	answer := "第一段：先说结论，这个问题有三个原因需要分别说明。\n\n第二段：详细解释。"
	deltas := func(yield func(string, error) bool) { // e.g. a chat completion stream
		for _, r := range answer {
			if !yield(string(r), nil) {
				return
			}
		}
	}
	m := &kf.Message{MsgID: "m1", OpenKfID: "wk1", ExternalUserID: "wm1", Origin: kf.OriginCustomer, MsgType: kf.MsgTypeText}
	rec, _ := kf.NewRecorder(m)
	err := rec.Stream(context.Background(), deltas)
	var se *kf.StreamError
	if errors.As(err, &se) && se.Sent > 0 {
		_ = rec.Text(context.Background(), "抱歉，回答中断了。") // the last message was kept for this
	}
	for _, t := range rec.Texts() {
		fmt.Println(t)
	}
	// Output:
	// 第一段：先说结论，这个问题有三个原因需要分别说明。
	// 第二段：详细解释。
}
