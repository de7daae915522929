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
	"github.com/wxkf/wxkf/internal/serve"
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
	return serve.Run(ctx, cfg.Addr(), mux, ch, log)
}

// switches reads the test switches from the environment.
func switches() testSwitches {
	sw := testSwitches{runTag: os.Getenv("WECHATCOM_KF_ECHO_RUN_TAG") == "1"}
	if ms, err := strconv.Atoi(os.Getenv("WECHATCOM_KF_ECHO_DELAY_MS")); err == nil && ms > 0 {
		sw.delay = time.Duration(ms) * time.Millisecond
	}
	return sw
}
