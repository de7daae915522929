package kftest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func TestFaultBusy(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	srv.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{"/cgi-bin/kf/send_msg"}})
	r := a.sendText(customer, "x")
	assert.Equal(t, kftest.CodeBusy, r.Code)
	assert.Empty(t, srv.Sent(), "a busy answer has no effect")
	assert.Equal(t, 5, srv.QuotaLeft(srv.OpenKfID(), customer))
	assert.Equal(t, 0, a.sync(obj{}).Code, "other paths unaffected")

	srv.SetFaults(kftest.Faults{BusyRate: 1})
	assert.Equal(t, kftest.CodeBusy, a.sync(obj{}).Code)
	srv.SetFaults(kftest.Faults{})
	assert.Equal(t, 0, a.sendText(customer, "x").Code)
}

func busyPattern(seed int64) string {
	srv := kftest.NewServer(kftest.WithSeed(seed))
	defer srv.Close()
	srv.SetFaults(kftest.Faults{BusyRate: 0.5, Paths: []string{"/cgi-bin/kf/sync_msg"}})
	hc := srv.HTTPServer().Client()
	tok := tokenOf(srv)
	var b strings.Builder
	for range 60 {
		resp, err := hc.Post(srv.URL()+"/cgi-bin/kf/sync_msg?access_token="+tok, "application/json",
			strings.NewReader(`{"open_kfid":"`+srv.OpenKfID()+`"}`))
		if err != nil {
			panic(err)
		}
		var r struct{ Errcode int }
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if r.Errcode == kftest.CodeBusy {
			b.WriteByte('B')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func tokenOf(srv *kftest.Server) string {
	resp, err := srv.HTTPServer().Client().Get(srv.URL() + "/cgi-bin/gettoken?" +
		url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}.Encode())
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var r struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return r.AccessToken
}

func TestFaultsDeterministicWithSeed(t *testing.T) {
	t.Parallel()
	p1, p2, p3 := busyPattern(42), busyPattern(42), busyPattern(7)
	assert.Equal(t, p1, p2, "same seed, same faults")
	assert.NotEqual(t, p1, p3)
	n := strings.Count(p1, "B")
	assert.True(t, n > 15 && n < 45, "about half busy: %s", p1)

	// Ids are deterministic too.
	s1, s2 := kftest.NewServer(kftest.WithSeed(9)), kftest.NewServer(kftest.WithSeed(9))
	defer s1.Close()
	defer s2.Close()
	assert.Equal(t, s1.OpenKfID(), s2.OpenKfID())
	assert.Equal(t, s1.AddText(customer, "x"), s2.AddText(customer, "x"))
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.SetFaults(kftest.Faults{Latency: 60 * time.Millisecond, LatencyJitter: 20 * time.Millisecond})
	start := time.Now()
	require.Equal(t, 0, a.sync(obj{}).Code)
	assert.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond)
}

func rawSend(hc *http.Client, srv *kftest.Server, tok string, body obj) (*http.Response, error) {
	b, _ := json.Marshal(body)
	return hc.Post(srv.URL()+"/cgi-bin/kf/send_msg?access_token="+tok, "application/json", bytes.NewReader(b))
}

func TestFaultDrop(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	body := obj{"touser": customer, "open_kfid": srv.OpenKfID(), "msgid": "idem-1", "msgtype": "text", "text": obj{"content": "x"}}

	srv.SetFaults(kftest.Faults{DropRate: 1, Paths: []string{"/cgi-bin/kf/send_msg"}})
	_, err := rawSend(a.hc, srv, a.token, body)
	require.Error(t, err, "the connection closes without an answer")
	assert.Empty(t, srv.Sent(), "dropped before processing")
	assert.Equal(t, 1, srv.Calls("/cgi-bin/kf/send_msg"))
	rj := srv.Rejected()
	require.Len(t, rj, 1)
	assert.Equal(t, "connection dropped", rj[0].Msg)

	// Dropped after processing: accepted, answer lost; the retry with the same msgid is a duplicate.
	srv.SetFaults(kftest.Faults{DropRate: 1, DropAfterProcessing: true, Paths: []string{"/cgi-bin/kf/send_msg"}})
	_, err = rawSend(a.hc, srv, a.token, body)
	require.Error(t, err)
	require.Len(t, srv.Sent(), 1, "the send took effect")
	srv.SetFaults(kftest.Faults{})
	assert.Equal(t, kftest.DuplicateMsgIDCode, a.send(body).Code)
	assert.Len(t, srv.Sent(), 1)
}

func TestObserverRedactsSecrets(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	var mu sync.Mutex
	var recs []kftest.Record
	cancel := srv.Observe(func(r kftest.Record) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	})
	a.token = a.fetchToken()
	srv.AddText(customer, "hello")
	rc := newReceiver(t, srv)
	require.NoError(t, srv.Notify(context.Background(), rc.ts.URL, srv.OpenKfID()))
	syncTok := rc.got()[0].Token
	require.Equal(t, 0, a.sync(obj{"token": syncTok}).Code)
	require.Equal(t, 0, a.sendText(customer, "reply").Code)
	id := a.upload("image", "media", "a.png", pngBytes(t, 2, 2)).str("media_id")
	a.get("/cgi-bin/media/get", url.Values{"media_id": {id}}, true)
	a.sendText(customer, "")
	require.NoError(t, srv.VerifyURL(context.Background(), rc.ts.URL))

	mu.Lock()
	got := append([]kftest.Record(nil), recs...)
	mu.Unlock()
	require.Len(t, got, 8)
	secrets := []string{a.token, srv.Secret(), syncTok, srv.CallbackToken(), srv.EncodingAESKey()}
	for _, r := range got {
		all := fmt.Sprintf("%+v %s %s", r, r.Request, r.Response)
		for _, s := range secrets {
			assert.NotContains(t, all, s, "record %s %s", r.Kind, r.Path)
		}
	}
	byPath := map[string]kftest.Record{}
	for _, r := range got {
		byPath[r.Path] = r
	}
	assert.Equal(t, kftest.RecordAPI, byPath["/cgi-bin/gettoken"].Kind)
	assert.Contains(t, byPath["/cgi-bin/kf/sync_msg"].Query, "access_token=%E2%80%A6")
	assert.Contains(t, string(byPath["/cgi-bin/kf/sync_msg"].Request), `"token":"…"`)
	assert.Contains(t, string(byPath["/cgi-bin/kf/sync_msg"].Response), "hello")
	assert.Equal(t, kftest.CodeEmptyText, byPath["/cgi-bin/kf/send_msg"].ErrCode)
	assert.Contains(t, string(byPath["/cgi-bin/media/upload"].Request), `"size"`)
	assert.Contains(t, string(byPath["/cgi-bin/media/get"].Response), `"image/png"`)
	var callbacks int
	for _, r := range got {
		if r.Kind == kftest.RecordCallback {
			callbacks++
			assert.Equal(t, http.StatusOK, r.Status)
		}
	}
	assert.Equal(t, 2, callbacks, "Notify and VerifyURL")

	cancel()
	a.sync(obj{})
	mu.Lock()
	assert.Len(t, recs, 8, "no records after cancel")
	mu.Unlock()
}

// Many goroutines sending to many customers: each customer gets exactly 5 (§6), nothing races.
func TestConcurrentQuota(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	const users, perUser = 40, 9
	for u := range users {
		srv.AddText(fmt.Sprint("wmC", u), "hi")
	}
	var wg sync.WaitGroup
	codes := make([][]int, users)
	for u := range users {
		codes[u] = make([]int, perUser)
		for i := range perUser {
			wg.Go(func() {
				resp, err := rawSend(a.hc, srv, a.token, obj{"touser": fmt.Sprint("wmC", u), "open_kfid": srv.OpenKfID(),
					"msgtype": "text", "text": obj{"content": fmt.Sprint(i)}})
				if err != nil {
					codes[u][i] = -999
					return
				}
				defer resp.Body.Close()
				var r struct{ Errcode int }
				_ = json.NewDecoder(resp.Body).Decode(&r)
				codes[u][i] = r.Errcode
			})
		}
	}
	wg.Wait()
	for u := range users {
		ok, quota := 0, 0
		for _, c := range codes[u] {
			switch c {
			case 0:
				ok++
			case kftest.CodeQuotaExceeded:
				quota++
			}
		}
		assert.Equal(t, 5, ok, "user %d", u)
		assert.Equal(t, perUser-5, quota, "user %d", u)
		assert.Len(t, srv.SentTo(srv.OpenKfID(), fmt.Sprint("wmC", u)), 5)
	}
}

// Messages added while a consumer pages through them are each returned exactly once, in order.
func TestConcurrentAddAndSync(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t, kftest.WithPageSize(7))
	const n = 300
	var want []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			id := srv.AddText(fmt.Sprint("wmU", i%20), fmt.Sprint(i))
			mu.Lock()
			want = append(want, id)
			mu.Unlock()
		}
	})
	var got []string
	cursor := ""
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		p := a.sync(obj{"cursor": cursor})
		require.Equal(t, 0, p.Code)
		for _, it := range items(t, p) {
			got = append(got, it.MsgID)
		}
		cursor = p.NextCursor
	}
	wg.Wait()
	assert.Equal(t, want, got)
}

func TestWaitSent(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []kftest.Sent)
	go func() {
		s, _ := srv.WaitSentTo(ctx, srv.OpenKfID(), customer, 2)
		done <- s
	}()
	a.sendText(customer, "1")
	a.sendText(customer, "2")
	s := <-done
	assert.Len(t, s, 2)

	short, c2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer c2()
	s, err := srv.WaitSent(short, 3)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, s, 2)
}
