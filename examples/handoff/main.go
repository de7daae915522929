// Command handoff is a bot that hands the customer to a human (转人工), built on kf.Router: when the
// customer writes "人工" or "转人工" (keyword routes) or clicks the 转人工 item of the welcome menu
// (a menu built with Router.Menu, whose click routes back to kf.HandoffHandler), the bot says so
// and moves the session to a servicer (state 3) or, without one, to the queue (state 2). While a
// human has the session the bot stays quiet; when the session comes back (ended by the servicer,
// or returned to the bot) it answers again.
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

// Texts the bot sends.
const (
	noticeHandoff = "正在为您转接人工客服…"
	sorryHandoff  = "抱歉，暂时无法转接人工客服，请稍后再试。"
)

// newApp creates the Channel, installs the bot on it and mounts it at /wxkf/.
func newApp(cfg kf.Config, servicer string, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return nil, nil, err
	}
	b := &bot{log: log}
	rt := kf.NewRouter()
	// The welcome menu's 转人工 item: clicking it sends "转人工" back with the item's click id,
	// which the router hands to kf.HandoffHandler (the session goes to the servicer, or the queue).
	welcome, err := rt.Menu("您好，我是机器人助手，有问题请直接问我。").
		Handoff("转人工", servicer, noticeHandoff).
		Build("")
	if err != nil {
		return nil, nil, err
	}
	// Typing it works too; a failed handoff is told to the customer.
	handoff := kf.Chain(kf.HandoffHandler(servicer, noticeHandoff), b.sorryIfFailed)
	rt.OnKeyword("人工", handoff)
	rt.OnKeyword("转人工", handoff)
	rt.Default(b.answer)
	rt.OnEvent(kf.EventSessionStatusChange, b.sessionChanged)
	rt.Use(b.quiet)

	ch.OnWelcome(func(ctx context.Context, m *kf.Message) (kf.Content, error) { return welcome, nil })
	ch.OnEvent(rt.Handle)
	ch.OnMessage(rt.Handle)
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
}

type bot struct {
	log *slog.Logger
}

// answer is the bot's reply to anything else.
func (b *bot) answer(ctx context.Context, m *kf.Message, r kf.Replier) error {
	return r.Text(ctx, "我是机器人助手，暂时只会复述："+describe(m)+"\n需要人工服务请回复“人工”。")
}

// sorryIfFailed tells the customer when the handoff failed (WeCom refused or was unreachable).
func (b *bot) sorryIfFailed(next kf.Handler) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		err := next(ctx, m, r)
		var re *kf.ReplyError
		if err == nil || errors.As(err, &re) {
			return err
		}
		b.log.Warn("handoff failed", "customer", m.ExternalUserID, "err", err)
		return r.Text(ctx, sorryHandoff)
	}
}

// quiet turns the Replier's refusal to send while a human servicer has the session (state 3) or it
// waits in the queue (state 2) into silence: that is the bot doing its job, not a failure.
func (b *bot) quiet(next kf.Handler) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		err := next(ctx, m, r)
		if errors.Is(err, kf.ErrHumanServicer) || errors.Is(err, kf.ErrSessionQueued) {
			b.log.Info("session is with a human: the bot stays quiet", "customer", m.ExternalUserID)
			return nil
		}
		return err
	}
}

// sessionChanged logs session changes. The Channel also drops its cached session state on them, so
// the bot's next reply sees the new state at once.
func (b *bot) sessionChanged(ctx context.Context, m *kf.Message, r kf.Replier) error {
	ev := m.Event
	b.log.Info("session_status_change", "customer", ev.ExternalUserID, "change", ev.ChangeType.String(),
		"old_servicer", ev.OldServicerUserID, "new_servicer", ev.NewServicerUserID)
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
