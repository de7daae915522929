// Command handoff is a bot that hands the customer to a human (转人工): when the customer writes
// "人工" or "转人工" (or clicks the menu item offered in the welcome), the bot says so and moves the
// session to a servicer (state 3) or, without one, to the queue (state 2). While a human has the
// session the bot stays quiet; when the session comes back (ended by the servicer, or returned to
// the bot) it answers again.
//
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… WECHATCOM_KF_AES_KEY=… \
//	HANDOFF_SERVICER=zhangsan go run ./examples/handoff
//
// HANDOFF_SERVICER is the WeCom userid of a servicer of the account (empty: the queue). The other
// settings are examples/echo's: config.json in the working directory, environment overriding it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, ".", log); err != nil {
		fmt.Fprintln(os.Stderr, "handoff:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, log *slog.Logger) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	opts, closeStores, err := cfg.ChannelOptions()
	if err != nil {
		return err
	}
	defer closeStores()
	h, ch, err := newApp(cfg.KF(), os.Getenv("HANDOFF_SERVICER"), log, opts...)
	if err != nil {
		return err
	}
	return serveUntil(ctx, cfg.Addr(), h, ch, log)
}

// newApp creates the Channel, installs the bot on it and mounts it at /wxkf/.
func newApp(cfg kf.Config, servicer string, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return nil, nil, err
	}
	b := &bot{servicer: servicer, log: log}
	ch.OnMessage(b.onMessage)
	ch.OnEvent(b.onEvent)
	ch.OnWelcome(func(ctx context.Context, m *kf.Message) (kf.Content, error) {
		// Clicking the item sends "转人工" back as a text message (with menu_id "handoff").
		return kf.NewMenu("您好，我是机器人助手，有问题请直接问我。", []kf.MenuItem{kf.MenuClick("handoff", "转人工")}, ""), nil
	})
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
}

type bot struct {
	servicer string // userid to hand to; "" = the queue
	log      *slog.Logger
}

func wantsHuman(text string) bool {
	text = strings.TrimSpace(text)
	return text == "人工" || text == "转人工"
}

func (b *bot) onMessage(ctx context.Context, m *kf.Message, r kf.Replier) error {
	if m.Text != nil && wantsHuman(m.Text.Content) {
		if err := r.Text(ctx, "正在为您转接人工客服…"); err != nil {
			return b.quiet(m, err) // already with a human or queued: nothing to do
		}
		if err := b.handoff(ctx, m, r); err != nil {
			b.log.Warn("handoff failed", "customer", m.ExternalUserID, "err", err)
			return r.Text(ctx, "抱歉，暂时无法转接人工客服，请稍后再试。")
		}
		return nil
	}
	answer := "我是机器人助手，暂时只会复述：" + describe(m) + "\n需要人工服务请回复“人工”。"
	return b.quiet(m, r.Text(ctx, answer))
}

// handoff moves the session to the servicer, or to the queue when there is none or they are not
// receiving (95019) or not activated (95014).
func (b *bot) handoff(ctx context.Context, m *kf.Message, r kf.Replier) error {
	if b.servicer != "" {
		err := r.Handoff(ctx, b.servicer)
		if err == nil {
			b.log.Info("handed to servicer", "customer", m.ExternalUserID, "servicer", b.servicer)
			return nil
		}
		if !errors.Is(err, kf.ErrServicerNotReceiving) && !errors.Is(err, kf.ErrServicerNotActivated) {
			return err
		}
		b.log.Warn("servicer unavailable, queueing instead", "servicer", b.servicer, "err", err)
	}
	if err := r.Handoff(ctx, ""); err != nil {
		return err
	}
	b.log.Info("queued for a servicer", "customer", m.ExternalUserID)
	return nil
}

// quiet turns the Replier's refusal to send while a human has the session (state 3) or it waits
// in the queue (state 2) into silence: that is the bot doing its job, not a failure.
func (b *bot) quiet(m *kf.Message, err error) error {
	if errors.Is(err, kf.ErrHumanServicer) || errors.Is(err, kf.ErrSessionQueued) {
		b.log.Info("session is with a human: the bot stays quiet", "customer", m.ExternalUserID)
		return nil
	}
	return err
}

// onEvent logs session changes. The Channel also drops its cached session state on them, so the
// bot's next reply sees the new state at once.
func (b *bot) onEvent(ctx context.Context, m *kf.Message, r kf.Replier) error {
	if ev := m.Event; ev != nil && ev.EventType == kf.EventSessionStatusChange {
		b.log.Info("session_status_change", "customer", ev.ExternalUserID, "change", ev.ChangeType.String(),
			"old_servicer", ev.OldServicerUserID, "new_servicer", ev.NewServicerUserID)
	}
	return nil
}

func describe(m *kf.Message) string {
	if m.Text != nil {
		return "「" + m.Text.Content + "」"
	}
	return "一条" + string(m.MsgType) + "消息"
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
