// Command echo is wxkf's reference bot: it answers every WeChat customer with what they sent
// (text, image, voice, video, file), welcomes customers who enter a session, and never answers
// human servicers or system events. Its configuration is chatgpt-on-wechat's wechatcom_kf
// channel's: config.json in the working directory, environment variables overriding it.
//
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… \
//	WECHATCOM_KF_AES_KEY=… go run ./examples/echo
//
// It listens on 0.0.0.0:9899 (wechatcom_kf_port) with the callback at /wxkf/. SIGTERM stops
// taking callbacks, finishes every message already pulled, saves the cursor and exits 0.
//
// Under faults it keeps the same promises with no help from a new callback: a WeCom outage (even
// with a kill -9 inside it), a pull cut short by a crash, malformed or oversized pages, a session
// back from a human without an event, one customer's flood, a replica paused past its lease.
//
// Two test switches make it behave like a bot backed by a language model:
//
//   - WECHATCOM_KF_ECHO_RUN_TAG=1: every text part starts with "[run XXXXXXXX] ", 8 hex digits
//     chosen afresh on every run of the handler; each part, tag included, is at most 2048 bytes,
//     and without the tags the parts join into the original text. A customer never receives parts
//     of two runs, nor a part twice.
//   - WECHATCOM_KF_ECHO_DELAY_MS=N: the handler waits N ms before replying (returning early if its
//     context ends), as a model call would.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "echo:", err)
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
	ch, err := kf.NewChannel(cfg.KF(), append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return err
	}
	register(ch, log, switches())

	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return serveUntil(ctx, cfg.Addr(), mux, ch, log)
}

// switches reads the test switches from the environment.
func switches() testSwitches {
	sw := testSwitches{runTag: os.Getenv("WECHATCOM_KF_ECHO_RUN_TAG") == "1"}
	if ms, err := strconv.Atoi(os.Getenv("WECHATCOM_KF_ECHO_DELAY_MS")); err == nil && ms > 0 {
		sw.delay = time.Duration(ms) * time.Millisecond
	}
	return sw
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
