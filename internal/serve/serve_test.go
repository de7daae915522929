package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// Run answers callbacks until ctx ends, then finishes the message in flight before returning.
func TestRunDrains(t *testing.T) {
	srv := kftest.NewServer()
	defer srv.Close()
	ch, err := kf.NewChannel(kf.Config{CorpID: srv.CorpID(), Secret: srv.Secret(), Token: srv.CallbackToken(), EncodingAESKey: srv.EncodingAESKey()},
		kf.WithStateDir(t.TempDir()), kf.WithClientOptions(kf.WithBaseURL(srv.URL())))
	require.NoError(t, err)
	started := make(chan struct{})
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		return r.Text(ctx, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- RunListener(ctx, ln, mux, ch, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	srv.AddText("c1", "hi")
	require.NoError(t, srv.Notify(context.Background(), "http://"+ln.Addr().String()+"/wxkf/", srv.OpenKfID()))
	<-started
	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(DrainTime + 5*time.Second):
		t.Fatal("Run did not return")
	}
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "c1"), 1, "the pulled message was finished before Run returned")
}

// A listener that cannot be opened is an error, and the Channel is shut down.
func TestRunListenError(t *testing.T) {
	srv := kftest.NewServer()
	defer srv.Close()
	ch, err := kf.NewChannel(kf.Config{CorpID: srv.CorpID(), Secret: srv.Secret(), Token: srv.CallbackToken(), EncodingAESKey: srv.EncodingAESKey()},
		kf.WithStateDir(t.TempDir()), kf.WithClientOptions(kf.WithBaseURL(srv.URL())))
	require.NoError(t, err)
	err = Run(context.Background(), "256.0.0.1:1", http.NotFoundHandler(), ch, slog.New(slog.NewTextHandler(io.Discard, nil)))
	assert.Error(t, err)
}
