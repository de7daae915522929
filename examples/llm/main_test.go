package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/examples/exampletest"
	"github.com/wxkf/wxkf/examples/llmtest"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// app is the LLM bot wired as main wires it, against kftest and the llmtest fake API.
type app struct {
	t     *testing.T
	wecom *kftest.Server
	api   *llmtest.Server
	ch    *kf.Channel
	url   string
	logs  *exampletest.Buffer
}

func newTestApp(t *testing.T, s settings, opts ...kf.ChannelOption) *app {
	t.Helper()
	wecom := kftest.NewServer()
	t.Cleanup(wecom.Close)
	api := llmtest.NewServer(llmtest.WithAPIKey("sk-test"), llmtest.WithChunkRunes(5))
	t.Cleanup(api.Close)
	ai := openai.NewClient(option.WithBaseURL(api.URL()+"/v1"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))

	cfg, copts := exampletest.Config(t, wecom)
	logs := &exampletest.Buffer{}
	if s.SystemPrompt == "" {
		s.SystemPrompt = DefaultSystemPrompt
	}
	if s.Model == "" {
		s.Model = "gpt-test"
	}
	mem := newLocalMemory(memoryTurns, memoryCustomers, memoryTTL)
	h, ch, err := newApp(cfg.KF(), ai, mem, s, slog.New(slog.NewTextHandler(logs, nil)), append(copts, opts...)...)
	require.NoError(t, err)
	return &app{t: t, wecom: wecom, api: api, ch: ch, url: exampletest.Serve(t, h, ch) + "/wxkf/", logs: logs}
}

// deliver sends one callback and waits until everything pulled is handled.
func (a *app) deliver() {
	a.t.Helper()
	exampletest.Deliver(a.t, a.wecom, a.url, a.ch, exampletest.Handled, a.logs)
}

func (a *app) say(user, text string) {
	a.t.Helper()
	a.wecom.AddText(user, text)
	a.deliver()
}

func (a *app) sent(user string) []string {
	var out []string
	for _, s := range a.wecom.SentTo(a.wecom.OpenKfID(), user) {
		out = append(out, s.Text)
	}
	return out
}

// A long streamed answer ends up in at most 5 sends of ≤ 2048 bytes, cut with "…", and WeCom
// never answers 95001.
func TestLongAnswerFitsTheQuota(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{})
	var b strings.Builder
	for b.Len() < 20000 {
		b.WriteString(strings.Repeat("这是一个很长的回答里的一句话。", 10) + "\n\n")
	}
	a.api.SetAnswer(func(llmtest.Request) string { return b.String() })
	a.say("alice", "请详细介绍一下你们的产品")

	sent := a.sent("alice")
	require.Len(t, sent, 5)
	for _, s := range sent {
		assert.LessOrEqual(t, len(s), media.MaxTextBytes)
	}
	assert.True(t, strings.HasSuffix(sent[4], "…"))
	for _, rj := range a.wecom.Rejected() {
		assert.NotEqual(t, 95001, rj.Code, "%+v", rj)
	}
	assert.Contains(t, a.logs.String(), "answer cut to fit the 5-message quota")
}

// Memory carries the previous turn into the next request, per customer; the system prompt leads.
func TestMemoryCarriesThePreviousTurn(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{SystemPrompt: "你是测试助手。"})
	a.api.SetAnswer(func(r llmtest.Request) string { return "答：" + r.LastUser() })
	a.say("bob", "我叫小明")
	a.say("bob", "我叫什么？")
	a.say("carol", "你好")

	assert.Equal(t, []string{"答：我叫小明", "答：我叫什么？"}, a.sent("bob"))
	reqs := a.api.Requests()
	require.Len(t, reqs, 3)
	assert.True(t, reqs[1].Stream)
	assert.Equal(t, []llmtest.Message{
		{Role: "system", Content: "你是测试助手。"},
		{Role: "user", Content: "我叫小明"},
		{Role: "assistant", Content: "答：我叫小明"},
		{Role: "user", Content: "我叫什么？"},
	}, reqs[1].Messages)
	assert.Equal(t, []llmtest.Message{{Role: "system", Content: "你是测试助手。"}, {Role: "user", Content: "你好"}},
		reqs[2].Messages, "another customer starts afresh")
}

// With vision on, the customer's image reaches the model as an image part.
func TestVisionPassesTheImage(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{Vision: true})
	a.api.SetAnswer(func(r llmtest.Request) string { return "图片里是一个红色方块。" })
	src := testPNG(t, 64, 48)
	a.wecom.AddImage("dan", src)
	a.deliver()
	assert.Equal(t, []string{"图片里是一个红色方块。"}, a.sent("dan"))

	reqs := a.api.Requests()
	require.Len(t, reqs, 1)
	q := reqs[0].Messages[len(reqs[0].Messages)-1]
	require.Len(t, q.Images, 1)
	assert.Contains(t, []string{"image/png", "image/jpeg"}, reqs[0].ImageTypes[0])
	cfg, _, err := image.DecodeConfig(bytes.NewReader(q.Images[0]))
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.Width)
	assert.Equal(t, 48, cfg.Height)

	a.api.SetAnswer(func(r llmtest.Request) string { return "好的" })
	a.say("dan", "是什么颜色？")
	reqs = a.api.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, llmtest.Message{Role: "user", Content: imagePlaceholder + " （客户发来一张图片）"}, reqs[1].Messages[1],
		"memory keeps a placeholder, not the image")
	assert.Empty(t, reqs[1].ImageTypes)
}

// Without vision, images, voice and other types get a text note and never reach the model.
func TestNotesForWhatTheModelCannotRead(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{})
	a.wecom.AddImage("erin", testPNG(t, 8, 8))
	a.deliver()
	a.wecom.AddVoice("erin", []byte("#!AMR\n\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	a.deliver()
	a.wecom.AddLocation("erin", 39.9, 116.4, "天安门", "北京")
	a.deliver()
	assert.Equal(t, []string{"我暂时看不懂图片，请用文字描述一下。", "收到语音。我暂时只能阅读文字，请打字告诉我。", "我暂时只能处理文字消息。"}, a.sent("erin"))
	assert.Empty(t, a.api.Requests())
}

// When the model fails and its failure does not pass, the customer gets an apology and the turn
// is not remembered.
func TestModelFailure(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{})
	a.api.SetFailure(&llmtest.Failure{Status: 429, Message: "Rate limit reached", Type: "requests"})
	a.say("fay", "你好")
	assert.Equal(t, []string{sorryFailed}, a.sent("fay"))
	assert.Contains(t, a.logs.String(), "Rate limit reached")

	// Broken in the middle of an answer: what was sent stays, the half paragraph is dropped, the
	// apology follows in the message Stream kept.
	p1 := "第一段回答已经生成，它足够长，会先发出去，后面的内容还在生成。"
	a.api.SetFailure(&llmtest.Failure{Status: 200, Message: "overloaded", Partial: p1 + "\n\n第二段只生成了一半"})
	a.say("fay", "再试一次")
	sent := a.sent("fay")
	require.Len(t, sent, 3)
	assert.Equal(t, p1, sent[1])
	assert.Equal(t, sorryFailed, sent[2])

	a.api.SetFailure(nil)
	a.say("fay", "现在呢？")
	reqs := a.api.Requests()
	assert.Len(t, reqs[len(reqs)-1].Messages, 2, "failed turns are not remembered: system + question")
}

// A model failure before any part was sent, while the question is fresh, is retried by the
// Channel: the customer gets the answer of the rerun, and no apology.
func TestModelFailureRetried(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{RetryFor: time.Minute}, kf.WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond))
	var calls atomic.Int32
	a.api.SetAnswer(func(r llmtest.Request) string { return "答：" + r.LastUser() })
	a.api.SetFailure(&llmtest.Failure{Status: 503, Message: "overloaded"})
	a.wecom.AddText("gil", "你好")
	require.NoError(t, a.wecom.Notify(context.Background(), a.url, a.wecom.OpenKfID()))
	require.Eventually(t, func() bool { return len(a.api.Requests()) >= 1 }, 5*time.Second, 5*time.Millisecond)
	calls.Store(int32(len(a.api.Requests())))
	a.api.SetFailure(nil)
	require.Eventually(t, func() bool { return len(a.sent("gil")) == 1 }, 10*time.Second, 5*time.Millisecond, "logs:\n%s", a.logs)
	assert.Equal(t, []string{"答：你好"}, a.sent("gil"))
	assert.GreaterOrEqual(t, a.ch.Stats().Retries, int64(1))
	assert.GreaterOrEqual(t, len(a.api.Requests()), 2)
}

// While a human servicer has the session (or it is queued), the bot sends nothing and does not
// even ask the model.
func TestQuietWhileWithAHuman(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{})
	for i, st := range []int{kftest.StateServicer, kftest.StateQueued} {
		a.wecom.AddText("gus", "在吗")
		a.wecom.SetServiceState(a.wecom.OpenKfID(), "gus", st, "agent1")
		a.deliver()
		assert.Empty(t, a.sent("gus"), "state %d", st)
		assert.Empty(t, a.api.Requests(), "state %d", st)
		assert.Equal(t, i+1, strings.Count(a.logs.String(), "the bot stays quiet"))
	}
}

func TestWelcome(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, settings{})
	require.NotEmpty(t, a.wecom.EnterSession("hal", "", ""))
	a.deliver()
	sent := a.wecom.SentTo(a.wecom.OpenKfID(), "hal")
	require.Len(t, sent, 1)
	assert.True(t, sent[0].OnEvent)
	assert.Equal(t, "您好，我是 AI 助手，有什么可以帮您？", sent[0].Text)
}

// run refuses to start without an LLM, naming the variables (not parallel: t.Setenv).
func TestRunNeedsAnLLM(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"wechatcom_corp_id":"ww1",
		"wechatcom_kf_secret":"s","wechatcom_kf_token":"t","wechatcom_kf_aes_key":"`+kftest.DefaultEncodingAESKey+`"}`), 0o600))
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	err := run(context.Background(), dir, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "OPENAI_BASE_URL")
	assert.ErrorContains(t, err, "OPENAI_API_KEY")

	t.Setenv("LLM_SYSTEM_PROMPT", "")
	t.Setenv("OPENAI_VISION", "")
	t.Setenv("OPENAI_MODEL", "")
	assert.Equal(t, settings{Model: DefaultModel, SystemPrompt: DefaultSystemPrompt, RetryFor: time.Minute}, settingsFromEnv())
	t.Setenv("LLM_SYSTEM_PROMPT", "be nice")
	t.Setenv("OPENAI_VISION", "1")
	t.Setenv("OPENAI_MODEL", "qwen-plus")
	assert.Equal(t, settings{Model: "qwen-plus", SystemPrompt: "be nice", Vision: true, RetryFor: time.Minute}, settingsFromEnv())
}

func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}
