package kf

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/kf/kftest"
)

// After Shutdown, a Channel leaves no goroutine behind: account loops, committers, workers, the
// poller and callback hooks all end. (Not parallel: goleak compares against what ran before.)
func TestChannelNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := kftest.NewServer()
	ch, err := NewChannel(kftestConfig(srv),
		WithStateDir(t.TempDir()), WithClientOptions(WithBaseURL(srv.URL())), WithPollInterval(time.Second, srv.OpenKfID()),
		WithWorkers(4))
	require.NoError(t, err)
	hooked := make(chan struct{}, 1)
	ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
	ch.OnCallback(func(ctx context.Context, ev *crypto.Event) { hooked <- struct{}{} })
	hs := httptest.NewServer(http.HandlerFunc(ch.ServeHTTP))
	for i := 0; i < 10; i++ {
		srv.AddText(fmt.Sprintf("u%d", i%3), fmt.Sprintf("m%d", i))
	}
	require.NoError(t, srv.Storm(context.Background(), hs.URL, srv.OpenKfID(), 5))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = srv.WaitSent(ctx, 10)
	require.NoError(t, err)
	require.NoError(t, srv.NotifyXML(ctx, hs.URL, []byte("<xml><MsgType>event</MsgType><Event>kf_account_auth_change</Event></xml>")))
	<-hooked
	require.NoError(t, ch.Shutdown(ctx))
	hs.Close()
	srv.Close()
}
