// Command llm is a WeChat customer-service bot backed by an OpenAI-compatible chat API (OpenAI,
// DeepSeek, Qwen, Moonshot, a local Ollama or vLLM, …) through the official openai-go SDK. It
// remembers each customer's recent conversation (in memory, or in Redis when the bot runs as
// several replicas), streams the answer into messages that fit WeCom's 5-message quota with
// Replier.Stream, and passes images to a vision model when enabled.
//
//	OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-… \
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… WECHATCOM_KF_AES_KEY=… \
//	go run ./examples/llm
//
// OPENAI_MODEL picks the model (default gpt-4o-mini), LLM_SYSTEM_PROMPT replaces the system
// prompt, OPENAI_VISION=1 sends customers' images to the model. The WeCom settings are
// examples/echo's: config.json in the working directory, environment overriding it; with a Redis
// URL there (wechatcom_kf_redis_url), the conversation memory is kept in Redis too.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// DefaultSystemPrompt asks for plain text: WeChat shows Markdown as typed.
const DefaultSystemPrompt = "你是微信客服助手。请用客户使用的语言简洁、礼貌地回答。" +
	"只用纯文本，不要使用 Markdown（微信不会渲染）；段落之间空一行。"

// DefaultModel is the model used when OPENAI_MODEL is unset.
const DefaultModel = "gpt-4o-mini"

// Memory bounds: the last turns per customer, how many customers (in memory), forgotten after
// this silence.
const (
	memoryTurns     = 10
	memoryCustomers = 10000
	memoryTTL       = 12 * time.Hour
)

// Image bounds: what is downloaded from WeCom (customers' images are ≤ 2 MB; docs/wecom-api.md §4) and what is sent
// to the model after media.FitImage.
const (
	maxDownloadBytes = 10 << 20
	maxVisionBytes   = 4 << 20
)

// imagePlaceholder stands in memory for the image of a message: images go to the model once.
const imagePlaceholder = "[image]"

// Replies the bot sends itself.
const (
	sorryFailed = "抱歉，我暂时无法回答，请稍后再试。"
	sorryEmpty  = "抱歉，这个问题我答不上来。"
)

// settings are the bot's own options (the WeCom side is configured separately).
type settings struct {
	Model        string
	SystemPrompt string
	Vision       bool // pass images to the model (it must be a vision model)
	// RetryFor is how long after the customer's message a model failure is retried (the Channel
	// runs the handler again with backoff) before the bot apologises instead.
	RetryFor time.Duration
}

func settingsFromEnv() settings {
	s := settings{Model: os.Getenv("OPENAI_MODEL"), SystemPrompt: os.Getenv("LLM_SYSTEM_PROMPT"), RetryFor: time.Minute}
	if s.Model == "" {
		s.Model = DefaultModel
	}
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
	base, key := strings.TrimSpace(os.Getenv("OPENAI_BASE_URL")), os.Getenv("OPENAI_API_KEY")
	if base == "" || key == "" {
		return errors.New("set OPENAI_BASE_URL (e.g. https://api.openai.com/v1) and OPENAI_API_KEY; OPENAI_MODEL is optional")
	}
	ai := openai.NewClient(option.WithBaseURL(base), option.WithAPIKey(key))
	opts, closeStores, err := cfg.ChannelOptions()
	if err != nil {
		return err
	}
	defer closeStores()
	var mem Memory = newLocalMemory(memoryTurns, memoryCustomers, memoryTTL)
	if cfg.RedisURL != "" {
		ro, err := goredis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("redis url: %w", err)
		}
		rdb := goredis.NewClient(ro)
		defer rdb.Close()
		mem = newRedisMemory(rdb, "wxkf:llm:memory:", memoryTurns, memoryTTL)
	}
	s := settingsFromEnv()
	h, ch, err := newApp(cfg.KF(), ai, mem, s, log, opts...)
	if err != nil {
		return err
	}
	log.Info("answering with", "model", s.Model)
	return serveUntil(ctx, cfg.Addr(), h, ch, log)
}

// newApp creates the Channel, installs the bot on it and mounts it at /wxkf/.
func newApp(cfg kf.Config, ai openai.Client, mem Memory, s settings, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return nil, nil, err
	}
	b := &bot{ch: ch, ai: ai, mem: mem, s: s, log: log}
	ch.Use(kf.Logging(log))
	ch.OnWelcome(func(ctx context.Context, m *kf.Message) (kf.Content, error) {
		return kf.NewText("您好，我是 AI 助手，有什么可以帮您？"), nil
	})
	ch.OnMessage(b.onMessage)
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
}

type bot struct {
	ch  *kf.Channel
	ai  openai.Client
	mem Memory
	s   settings
	log *slog.Logger
}

// question is a customer message as the model's input.
type question struct {
	text  string
	image []byte // a JPEG or PNG, for a vision model
}

// onMessage answers one customer message. The Channel calls it in order per customer, so the
// customer's memory is read and written by one call at a time.
//
// The Channel may run it again for the same message (it returned a transient error, or the process
// crashed): the Replier then replays what the first run sent and drops what a rerun would add once
// its answer differs, so a customer never gets parts of two answers.
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
	history, err := b.mem.History(ctx, key)
	if err != nil {
		return kf.Retry(err) // the memory store is down: try again later
	}
	var answer strings.Builder
	stream := b.ai.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: b.s.Model, Messages: b.messages(history, q),
	})
	defer stream.Close()
	err = r.Stream(ctx, deltas(stream, &answer))

	var se *kf.StreamError
	switch {
	case errors.As(err, &se):
		b.log.Warn("the model failed", "customer", m.ExternalUserID, "sent", se.Sent, "err", se.Err, "detail", apiMessage(se.Err))
		if se.Sent == 0 && retryable(se.Err) && time.Since(m.SendTime) < b.s.RetryFor {
			return kf.Retry(se.Err) // nothing reached the customer: ask again later
		}
		return b.reply(ctx, r, sorryFailed) // Stream kept the last message of the quota for this
	case errors.Is(err, kf.ErrReplySuperseded):
		b.log.Info("a rerun answered differently: the first answer stands", "customer", m.ExternalUserID)
		return nil
	case err != nil && !errors.Is(err, kf.ErrQuotaExceeded):
		return b.logged(err)
	case strings.TrimSpace(answer.String()) == "":
		return b.reply(ctx, r, sorryEmpty)
	}
	if err != nil {
		b.log.Info("answer cut to fit the 5-message quota", "customer", m.ExternalUserID, "err", err)
	}
	user := q.text
	if q.image != nil {
		user = imagePlaceholder + " " + user
	}
	if err := b.mem.Add(ctx, key, Turn{User: user, Assistant: answer.String()}); err != nil {
		b.log.Warn("remembering the turn", "err", err) // answered; the next turn lacks this one
	}
	return nil
}

// deltas yields the text of a chat completion stream, keeping all of it in answer, and the
// stream's error at the end.
func deltas(s *ssestream.Stream[openai.ChatCompletionChunk], answer *strings.Builder) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for s.Next() {
			c := s.Current()
			if len(c.Choices) == 0 || c.Choices[0].Delta.Content == "" {
				continue
			}
			d := c.Choices[0].Delta.Content
			answer.WriteString(d)
			if !yield(d, nil) {
				return
			}
		}
		if err := s.Err(); err != nil {
			yield("", err)
		}
	}
}

// apiMessage is the message of an API error answer (the SDK's error string has the status only).
func apiMessage(err error) string {
	var ae *openai.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return ""
}

// retryable reports a model failure that may pass: rate limits, server errors, network errors.
func retryable(err error) bool {
	var ae *openai.Error
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// messages builds the model's input: the system prompt, the remembered turns, the question.
func (b *bot) messages(history []Turn, q question) []openai.ChatCompletionMessageParamUnion {
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage(b.s.SystemPrompt)}
	for _, t := range history {
		msgs = append(msgs, openai.UserMessage(t.User), openai.AssistantMessage(t.Assistant))
	}
	if q.image == nil {
		return append(msgs, openai.UserMessage(q.text))
	}
	url := "data:" + http.DetectContentType(q.image) + ";base64," + base64.StdEncoding.EncodeToString(q.image)
	return append(msgs, openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart(q.text),
		openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: url}),
	}))
}

// question turns a customer message into the model's input, or into a note to send instead.
func (b *bot) question(ctx context.Context, m *kf.Message) (q question, note string, err error) {
	switch {
	case m.Text != nil:
		q.text = m.Text.Content
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
		q.text, q.image = "（客户发来一张图片）", fitted
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

// logged logs a reply the Replier refused and swallows it: while a human servicer has the session,
// or it is queued, the bot simply stays quiet. Other errors go back to the Channel, which retries
// the transient ones.
func (b *bot) logged(err error) error {
	var re *kf.ReplyError
	switch {
	case err == nil:
	case errors.Is(err, kf.ErrHumanServicer), errors.Is(err, kf.ErrSessionQueued):
		b.log.Info("a human has the session: the bot stays quiet")
		return nil
	case errors.As(err, &re), errors.Is(err, kf.ErrReplySuperseded):
		b.log.Info("reply not sent", "err", err)
		return nil
	}
	return err
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
