// Package serve runs an example bot's HTTP server with the graceful stop the echo contract asks
// for. examples/mux spells the same steps out for readers; the other examples call Run.
package serve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wxkf/wxkf/kf"
)

// DrainTime bounds the stop: the echo contract allows 30 s from SIGTERM to exit.
const DrainTime = 25 * time.Second

// Run serves h on addr until ctx ends (SIGTERM), then stops within DrainTime: the Channel first
// (callbacks get 503 and WeCom retries them later; every message already pulled is finished, its
// replies sent, the cursors saved), then the HTTP server. If the listener fails, the Channel is
// shut down and the error returned.
func Run(ctx context.Context, addr string, h http.Handler, ch *kf.Channel, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = ch.Shutdown(context.Background())
		return err
	}
	return RunListener(ctx, ln, h, ch, log)
}

// RunListener is Run on a listener the caller opened.
func RunListener(ctx context.Context, ln net.Listener, h http.Handler, ch *kf.Channel, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "callback", "/wxkf/")
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		_ = ch.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("stopping: finishing pulled messages")
	sctx, cancel := context.WithTimeout(context.Background(), DrainTime)
	defer cancel()
	err := ch.Shutdown(sctx)
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}
