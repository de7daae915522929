package kf

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// WeCom takes the first part of a three-part reply but its answer is lost (a network blip): the
// client's retry of that very call is refused as a repeated msgid. That is this attempt's own
// acceptance, not an earlier run's lost reply, so the rest of the same answer still goes out, and
// nothing counts as superseded.
func TestSendBlipAfterAcceptanceDoesNotCutTheReply(t *testing.T) {
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	seen := map[string]bool{}
	blips := 0
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := http.NewRequestWithContext(r.Context(), r.Method, srv.URL()+r.URL.RequestURI(), bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		if r.URL.Path == pathSend {
			var sent struct{ MsgID string }
			_ = json.Unmarshal(body, &sent)
			mu.Lock()
			first := !seen[sent.MsgID]
			seen[sent.MsgID] = true
			if first && blips == 0 {
				blips++ // WeCom took it; the answer never arrives
				mu.Unlock()
				http.Error(w, "upstream connection reset", http.StatusBadGateway)
				return
			}
			mu.Unlock()
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(px.Close)

	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(fastRetry, WithClientOptions(WithBaseURL(px.URL), WithRetry(3, time.Millisecond, 5*time.Millisecond)))
	answer := strings.Repeat("甲", 600) + strings.Repeat("乙", 600) + strings.Repeat("丙", 600) // 5,400 bytes: 3 parts
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, answer) })
	srv.AddText("alice", "hi")
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 1 }, 10*time.Second, 5*time.Millisecond)
	got := e.texts("alice")
	require.Len(t, got, 3, "every part of the answer")
	require.Equal(t, answer, strings.Join(got, ""))
	require.Zero(t, e.ch.Stats().RepliesSuperseded)
	require.Equal(t, 1, blips)
}
