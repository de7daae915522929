// Command mux shows a wxkf Channel mounted on a service's existing net/http mux, beside its other
// routes (/healthz and the site at /), with a graceful shutdown on SIGTERM. The bot itself is a
// one-liner; see examples/echo and examples/llm for real ones.
//
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… \
//	WECHATCOM_KF_AES_KEY=… go run ./examples/mux
//
// Settings are examples/echo's: config.json in the working directory, environment overriding it.
// The WeCom callback URL is http://your-host:9899/wxkf/.
package main

import (
	"context"
	"errors"
	"fmt"
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

// newApp builds the service's handler: its own routes, and the Channel at /wxkf/.
func newApp(cfg kf.Config, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
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
	// The service's own routes.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
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
	h, ch, err := newApp(cfg.KF(), log, opts...)
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
