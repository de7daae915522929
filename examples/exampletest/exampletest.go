// Package exampletest runs the examples' bots against kftest in their tests: the examples' config
// for a kftest server, the bot served over HTTP until the test ends, a callback delivered and
// waited for, and a buffer for logs written from several goroutines. It is a test helper of the
// examples, not part of the SDK.
package exampletest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// Buffer is a bytes.Buffer safe for concurrent writers (a logger, an exporter) and the test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.b.String())
}

// Config returns the examples' configuration for wecom (cursors in a temporary directory, history
// skipped) and the Channel options it gives; the stores are closed when the test ends.
func Config(t testing.TB, wecom *kftest.Server) (*config.Config, []kf.ChannelOption) {
	t.Helper()
	cfg := &config.Config{CorpID: wecom.CorpID(), Secret: wecom.Secret(), Token: wecom.CallbackToken(),
		AESKey: wecom.EncodingAESKey(), APIBase: wecom.URL(), CursorDir: t.TempDir(), SkipHistory: true}
	opts, closeStores, err := cfg.ChannelOptions()
	require.NoError(t, err)
	t.Cleanup(closeStores)
	return cfg, opts
}

// Serve serves h, the bot's handler, until the test ends, then shuts ch down. It returns the
// server's URL.
func Serve(t testing.TB, h http.Handler, ch *kf.Channel) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, ch.Shutdown(ctx))
	})
	return hs.URL
}

// Deliver sends one callback for wecom's account to the bot's callback URL and waits until
// count(ch.Stats()) grew and nothing is in flight or queued; logs are shown if it does not come.
func Deliver(t testing.TB, wecom *kftest.Server, callbackURL string, ch *kf.Channel, count func(kf.Stats) int64, logs *Buffer) {
	t.Helper()
	before := count(ch.Stats())
	require.NoError(t, wecom.Notify(context.Background(), callbackURL, wecom.OpenKfID()))
	require.Eventually(t, func() bool {
		s := ch.Stats()
		return count(s) > before && s.InFlight == 0 && s.QueueDepth == 0
	}, 10*time.Second, 5*time.Millisecond, "stats %+v; logs:\n%s", ch.Stats(), logs)
}

// Handled is a count for Deliver: the messages handled and marked done.
func Handled(s kf.Stats) int64 { return s.Handled }

// Dispatched is a count for Deliver: the messages handed to the bot's hooks.
func Dispatched(s kf.Stats) int64 { return s.Dispatched }
