// Command mux shows a wxkf Channel mounted on a service's existing net/http mux, beside its other
// routes (the site at /), with its OpenTelemetry metrics served to Prometheus at /metrics, the
// Channel's probes at /healthz and /readyz, and a graceful shutdown on SIGTERM. The bot itself is
// a one-liner; see examples/echo and examples/llm for real ones.
//
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… \
//	WECHATCOM_KF_AES_KEY=… go run ./examples/mux
//
// Settings are examples/echo's: config.json in the working directory, environment overriding it.
// The WeCom callback URL is http://your-host:9899/wxkf/. WXKF_MUX_TRACE=stdout prints every span
// (callback, pull, message, API call) to standard output.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
		fmt.Fprintln(os.Stderr, "mux:", err)
		os.Exit(1)
	}
}

// newApp builds the service's handler: its own routes, its metrics and probes, and the Channel at
// /wxkf/.
func newApp(cfg kf.Config, log *slog.Logger, tel *telemetry, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	opts = append(opts, tel.channelOptions()...)
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log))...)
	if err != nil {
		return nil, nil, err
	}
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		if m.Text != nil {
			return r.Text(ctx, "您说："+m.Text.Content)
		}
		return r.Text(ctx, "收到您的"+string(m.MsgType)+"消息。")
	})

	mux := http.NewServeMux()
	// Operations: Prometheus scrapes /metrics; the orchestrator probes /healthz (is the process
	// alive?) and /readyz (can it work: store reachable, access token obtainable?). Keep them off
	// the public internet: /readyz names the accounts and the errors.
	mux.Handle("GET /metrics", tel.metrics)
	mux.Handle("GET /healthz", ch.LivenessHandler())
	mux.Handle("GET /readyz", ch.ReadinessHandler())
	// The service's own routes.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "my existing service")
	})
	// The WeCom callback: GET verifies the URL, POST delivers events. Both paths, because the
	// URL entered in the WeCom admin may or may not end in a slash.
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
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
	var traceOut io.Writer
	if os.Getenv("WXKF_MUX_TRACE") == "stdout" {
		traceOut = os.Stdout
	}
	tel, err := newTelemetry(traceOut)
	if err != nil {
		return err
	}
	defer func() { _ = tel.shutdown(context.Background()) }()
	h, ch, err := newApp(cfg.KF(), log, tel, opts...)
	if err != nil {
		return err
	}

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		_ = ch.Shutdown(context.Background())
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "callback", "/wxkf/")
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr: // the listener failed
		_ = ch.Shutdown(context.Background())
		return err
	case <-ctx.Done(): // SIGTERM
	}

	// Graceful shutdown, within 25 s (the other examples do the same in serveUntil): first the HTTP server stops accepting connections and waits
	// for the requests in progress (callbacks are answered in milliseconds; WeCom retries the ones
	// refused meanwhile); then the Channel finishes every message it has already pulled — handler
	// and replies — and saves the cursors.
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if cerr := ch.Shutdown(sctx); err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}
