// Command llm is a WeChat customer-service bot backed by an OpenAI-compatible chat API (OpenAI,
// DeepSeek, Qwen, Moonshot, a local Ollama or vLLM, …). It remembers each customer's recent
// conversation, streams the answer into messages that fit WeCom's 5-message quota, and passes
// images to a vision model when enabled.
//
//	OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-… \
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… WECHATCOM_KF_AES_KEY=… \
//	go run ./examples/llm
//
// OPENAI_MODEL picks the model (default gpt-4o-mini), LLM_SYSTEM_PROMPT replaces the system
// prompt, OPENAI_VISION=1 sends customers' images to the model. The WeCom settings are
// examples/echo's: config.json in the working directory, environment overriding it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// DefaultSystemPrompt asks for plain text: WeChat shows Markdown as typed.
const DefaultSystemPrompt = "你是微信客服助手。请用客户使用的语言简洁、礼貌地回答。" +
	"只用纯文本，不要使用 Markdown（微信不会渲染）；段落之间空一行。"

// Memory bounds: the last turns per customer, how many customers, forgotten after this silence.
const (
	memoryTurns     = 10
	memoryCustomers = 10000
	memoryTTL       = 12 * time.Hour
)

// Image bounds: what is downloaded from WeCom (customers' images are ≤ 2 MB; §4) and what is sent
// to the model after media.FitImage.
const (
	maxDownloadBytes = 10 << 20
	maxVisionBytes   = 4 << 20
)

// settings are the bot's own options (the LLM client and WeCom are configured separately).
type settings struct {
	SystemPrompt string
	Vision       bool // pass images to the model (it must be a vision model)
}

func settingsFromEnv() settings {
	s := settings{SystemPrompt: os.Getenv("LLM_SYSTEM_PROMPT")}
	if s.SystemPrompt == "" {
		s.SystemPrompt = DefaultSystemPrompt
	}
	s.Vision, _ = strconv.ParseBool(os.Getenv("OPENAI_VISION"))
	return s
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, ".", log); err != nil {
		fmt.Fprintln(os.Stderr, "llm:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, log *slog.Logger) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	ai, ok := llm.FromEnv()
	if !ok {
		return errors.New("set OPENAI_BASE_URL (e.g. https://api.openai.com/v1) and OPENAI_API_KEY; OPENAI_MODEL is optional")
	}
	opts, closeStores, err := cfg.ChannelOptions()
	if err != nil {
		return err
	}
	defer closeStores()
	h, ch, err := newApp(cfg.KF(), ai, settingsFromEnv(), log, opts...)
	if err != nil {
		return err
	}
	log.Info("answering with", "model", ai.Model())
	return serveUntil(ctx, cfg.Addr(), h, ch, log)
}

// newApp creates the Channel, installs the bot on it and mounts it at /wxkf/.
func newApp(cfg kf.Config, ai *llm.Client, s settings, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	mem, err := llm.NewMemory(memoryTurns, memoryCustomers, memoryTTL)
	if err != nil {
		return nil, nil, err
	}
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return nil, nil, err
	}
	b := &bot{ch: ch, ai: ai, mem: mem, s: s, log: log}
	ch.OnMessage(b.onMessage)
	ch.OnWelcome(func(ctx context.Context, m *kf.Message) (kf.Content, error) {
		return kf.NewText("您好，我是 AI 助手，有什么可以帮您？"), nil
	})
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
}

type bot struct {
	ch  *kf.Channel
	ai  *llm.Client
	mem *llm.Memory
	s   settings
	log *slog.Logger
}

// onMessage answers one customer message. The Channel calls it in order per customer, so the
// customer's memory is read and written by one call at a time.
//
// It returns nil after a failure it has logged: the model's answer differs on every call, and a
// handler the Channel ran again would send a different answer under the same message ids, which
// WeCom drops as repeats — the customer would get pieces of two answers.
func (b *bot) onMessage(ctx context.Context, m *kf.Message, r kf.Replier) error {
	q, note, err := b.question(ctx, m)
	if err != nil {
		b.log.Warn("reading the message", "msgid", m.MsgID, "err", err)
		note = "抱歉，这条消息我没能读取，请再发一次。"
	}
	if note != "" {
		return b.reply(ctx, r, note)
	}
	if err := r.Ready(ctx); err != nil {
		// A human has the session, it ended, or the quota is used: the Replier would refuse to
		// send, so do not pay for an answer.
		b.log.Info("cannot reply now: the bot stays quiet", "customer", m.ExternalUserID, "why", err)
		return nil
	}

	key := m.OpenKfID + "/" + m.ExternalUserID
	msgs := append([]llm.Message{{Role: llm.RoleSystem, Content: b.s.SystemPrompt}}, b.mem.History(key)...)
	msgs = append(msgs, q)
	var answer string
	var streamErr error
	err = llm.ReplyStream(ctx, r, func(onDelta func(string)) (string, error) {
		answer, streamErr = b.ai.Stream(ctx, msgs, onDelta)
		return answer, streamErr
	})
	switch {
	case streamErr != nil:
		// ReplyStream keeps one message of the quota for the end: it is free for this.
		b.log.Warn("the model failed", "err", streamErr)
		return b.reply(ctx, r, "抱歉，我暂时无法回答，请稍后再试。")
	case errors.Is(err, llm.ErrEmptyAnswer):
		return b.reply(ctx, r, "抱歉，这个问题我答不上来。")
	case err == nil, errors.Is(err, kf.ErrQuotaExceeded):
		if err != nil {
			b.log.Info("answer cut to fit the 5-message quota", "customer", m.ExternalUserID, "err", err)
		}
		b.mem.AddTurn(key, q, llm.Message{Role: llm.RoleAssistant, Content: answer})
		return nil
	}
	return b.logged(err)
}

// question turns a customer message into the model's input, or into a note to send instead.
func (b *bot) question(ctx context.Context, m *kf.Message) (q llm.Message, note string, err error) {
	q.Role = llm.RoleUser
	switch {
	case m.Text != nil:
		q.Content = m.Text.Content
	case m.Image != nil && b.s.Vision:
		img, err := b.download(ctx, m.Image.MediaID)
		if err != nil {
			return q, "", err
		}
		// Any format WeChat delivers becomes a JPEG or PNG the model accepts, within its size.
		fitted, _, err := media.FitImage(img, maxVisionBytes)
		if err != nil {
			return q, "抱歉，这张图片我打不开。", nil
		}
		q.Content, q.Images = "（客户发来一张图片）", [][]byte{fitted}
	case m.Image != nil:
		note = "我暂时看不懂图片，请用文字描述一下。"
	case m.Voice != nil:
		note = "收到语音。我暂时只能阅读文字，请打字告诉我。"
	default:
		note = "我暂时只能处理文字消息。"
	}
	return q, note, nil
}

// download fetches a customer's media, at most maxDownloadBytes.
func (b *bot) download(ctx context.Context, mediaID string) ([]byte, error) {
	w := &capped{max: maxDownloadBytes}
	if _, err := b.ch.DownloadMedia(ctx, mediaID, w); err != nil {
		return nil, err
	}
	return w.b, nil
}

// reply sends a short text, staying quiet if a human has the session.
func (b *bot) reply(ctx context.Context, r kf.Replier, text string) error {
	return b.logged(r.Text(ctx, text))
}

// logged logs a reply failure and swallows it (see onMessage). While a human servicer has the
// session, or it is queued, the Replier refuses to send: the bot simply stays quiet.
func (b *bot) logged(err error) error {
	switch {
	case err == nil:
	case errors.Is(err, kf.ErrHumanServicer), errors.Is(err, kf.ErrSessionQueued):
		b.log.Info("a human has the session: the bot stays quiet")
	default:
		b.log.Warn("reply failed", "err", err)
	}
	return nil
}

// capped is a buffer that refuses to grow past max.
type capped struct {
	b   []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if len(c.b)+len(p) > c.max {
		return 0, fmt.Errorf("media larger than %d bytes", c.max)
	}
	c.b = append(c.b, p...)
	return len(p), nil
}

// serveUntil serves h on addr until ctx ends (SIGTERM), then stops within 25 s: the Channel first
// (callbacks get 503 and WeCom retries them later; every message already pulled is finished, the
// cursors saved), then the HTTP server.
func serveUntil(ctx context.Context, addr string, h http.Handler, ch *kf.Channel, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	log.Info("listening", "addr", addr, "callback", "/wxkf/")
	select {
	case err := <-failed:
		_ = ch.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("stopping: finishing pulled messages")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err := ch.Shutdown(sctx)
	_ = srv.Shutdown(sctx)
	return err
}
