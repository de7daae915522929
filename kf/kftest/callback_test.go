package kftest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/kf/kftest"
)

// receiver is a minimal WeCom callback endpoint built on package crypto, recording what it gets.
type receiver struct {
	t      testing.TB
	c      *crypto.Crypto
	mu     sync.Mutex
	events []*crypto.Event
	bodies [][]byte
	status atomic.Int32 // answer status for POSTs (default 200)
	delay  atomic.Int64 // ns to wait before answering
	echo   func(plain []byte) []byte
	ts     *httptest.Server
}

func newReceiver(t testing.TB, srv *kftest.Server) *receiver {
	c, err := crypto.New(srv.CallbackToken(), srv.EncodingAESKey(), srv.CorpID())
	require.NoError(t, err)
	rc := &receiver{t: t, c: c, echo: func(p []byte) []byte { return p }}
	rc.status.Store(http.StatusOK)
	rc.ts = httptest.NewServer(rc)
	t.Cleanup(rc.ts.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // read first so that a client hanging up cancels r.Context()
	if d := rc.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	q := r.URL.Query()
	if r.Method == http.MethodGet {
		plain, err := rc.c.VerifyURL(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
		if err != nil {
			http.Error(w, "bad", http.StatusForbidden)
			return
		}
		_, _ = w.Write(rc.echo(plain))
		return
	}
	inner, err := rc.c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	if err != nil {
		http.Error(w, "forged", http.StatusForbidden)
		return
	}
	ev, err := crypto.ParseEvent(inner)
	if err != nil {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	rc.bodies = append(rc.bodies, body)
	rc.mu.Unlock()
	w.WriteHeader(int(rc.status.Load()))
	_, _ = w.Write([]byte("success"))
}

func (rc *receiver) got() []*crypto.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*crypto.Event(nil), rc.events...)
}

func TestNotifyDeliversDecryptableEvent(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	rc := newReceiver(t, srv)
	srv.AddText(customer, "hello")

	require.NoError(t, srv.Notify(context.Background(), rc.ts.URL+"/wxkf/", srv.OpenKfID()))
	evs := rc.got()
	require.Len(t, evs, 1)
	ev := evs[0]
	assert.Equal(t, srv.CorpID(), ev.ToUserName)
	assert.Equal(t, "event", ev.MsgType)
	assert.Equal(t, "kf_msg_or_event", ev.Event)
	assert.Equal(t, srv.OpenKfID(), ev.OpenKfID)
	assert.NotEmpty(t, ev.Token)
	assert.LessOrEqual(t, len(ev.Token), 128)
	assert.InDelta(t, time.Now().Unix(), ev.CreateTime, 5)

	// The envelope is WeCom's POST shape, and the token works for sync_msg.
	var env struct {
		ToUserName string `xml:"ToUserName"`
		Encrypt    string `xml:"Encrypt"`
	}
	require.NoError(t, xml.Unmarshal(rc.bodies[0], &env))
	assert.Equal(t, srv.CorpID(), env.ToUserName)
	assert.NotEmpty(t, env.Encrypt)
	p := a.sync(obj{"token": ev.Token})
	require.Equal(t, 0, p.Code, p.Msg)
	assert.Len(t, p.MsgList, 1)

	// Non-200 answers are errors.
	rc.status.Store(http.StatusInternalServerError)
	err := srv.Notify(context.Background(), rc.ts.URL, srv.OpenKfID())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "500")
	assert.Error(t, srv.Notify(context.Background(), rc.ts.URL, "wkunknown"))
}

func TestNotifyTimeout(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t, kftest.WithCallbackTimeout(50*time.Millisecond))
	rc := newReceiver(t, srv)
	rc.delay.Store(int64(time.Second))
	start := time.Now()
	err := srv.Notify(context.Background(), rc.ts.URL, srv.OpenKfID())
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), err)
	assert.Less(t, time.Since(start), time.Second)
}

func TestSignedCallbackIsAuthentic(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)
	c, err := crypto.New(srv.CallbackToken(), srv.EncodingAESKey(), srv.CorpID())
	require.NoError(t, err)
	q, body := srv.SignedCallback(srv.OpenKfID())
	for _, k := range []string{"msg_signature", "timestamp", "nonce"} {
		assert.NotEmpty(t, q.Get(k), k)
	}
	inner, err := c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	require.NoError(t, err)
	ev, err := crypto.ParseEvent(inner)
	require.NoError(t, err)
	assert.Equal(t, srv.OpenKfID(), ev.OpenKfID)

	// Any change breaks it: the signature covers Encrypt, timestamp and nonce.
	_, err = c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp")+"1", q.Get("nonce"), body)
	assert.ErrorIs(t, err, crypto.ErrInvalidSignature)
	tampered := bytes.Replace(body, []byte("<Encrypt><![CDATA["), []byte("<Encrypt><![CDATA[A"), 1)
	_, err = c.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), tampered)
	assert.ErrorIs(t, err, crypto.ErrInvalidSignature)
	// Another corp's receiver refuses it.
	c2, err := crypto.New(srv.CallbackToken(), srv.EncodingAESKey(), "wwsomeoneelse")
	require.NoError(t, err)
	_, err = c2.DecryptMessage(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	assert.ErrorIs(t, err, crypto.ErrReceiverMismatch)
}

func TestCallbackCryptoOption(t *testing.T) {
	t.Parallel()
	key := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	srv, _ := newAPI(t, kftest.WithCallbackCrypto("tok123", key))
	assert.Equal(t, "tok123", srv.CallbackToken())
	assert.Equal(t, key, srv.EncodingAESKey())
	rc := newReceiver(t, srv)
	require.NoError(t, srv.Notify(context.Background(), rc.ts.URL, srv.OpenKfID()))
	assert.Panics(t, func() { kftest.NewServer(kftest.WithCallbackCrypto("tok", "short")) })
}

func TestStorm(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)
	rc := newReceiver(t, srv)
	require.NoError(t, srv.Storm(context.Background(), rc.ts.URL, srv.OpenKfID(), 25))
	evs := rc.got()
	require.Len(t, evs, 25)
	for _, ev := range evs {
		assert.Equal(t, evs[0].Token, ev.Token, "identical deliveries")
	}
	rc.mu.Lock()
	for _, b := range rc.bodies {
		assert.Equal(t, rc.bodies[0], b)
	}
	rc.mu.Unlock()

	rc.status.Store(http.StatusServiceUnavailable)
	err := srv.Storm(context.Background(), rc.ts.URL, srv.OpenKfID(), 3)
	require.Error(t, err)
	assert.Equal(t, 3, strings.Count(err.Error(), "503"))
}

func TestVerifyURL(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)
	rc := newReceiver(t, srv)
	require.NoError(t, srv.VerifyURL(context.Background(), rc.ts.URL+"/wxkf"))

	for name, echo := range map[string]func([]byte) []byte{
		"trailing newline": func(p []byte) []byte { return append(p, '\n') },
		"quoted":           func(p []byte) []byte { return []byte(`"` + string(p) + `"`) },
		"BOM":              func(p []byte) []byte { return append([]byte("\xef\xbb\xbf"), p...) },
		"wrong":            func([]byte) []byte { return []byte("12345") },
	} {
		rc.echo = echo
		assert.Error(t, srv.VerifyURL(context.Background(), rc.ts.URL), name)
	}

	q, plain := srv.SignedEcho()
	assert.Len(t, plain, 19)
	c, err := crypto.New(srv.CallbackToken(), srv.EncodingAESKey(), srv.CorpID())
	require.NoError(t, err)
	got, err := c.VerifyURL(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
	require.NoError(t, err)
	assert.Equal(t, plain, string(got))
	assert.Contains(t, q.Get("echostr"), "+", "echostr with '+' exercises URL decoding")
	// The query survives encoding: '+' must travel as %2B.
	assert.Contains(t, q.Encode(), "%2B")
}

func TestNotifyXML(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)
	rc := newReceiver(t, srv)
	inner := []byte("<xml><ToUserName><![CDATA[" + srv.CorpID() + "]]></ToUserName><CreateTime>1</CreateTime>" +
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_account_auth_change]]></Event>" +
		"<AuthAddOpenKfId><OpenKfId><![CDATA[" + srv.OpenKfID() + "]]></OpenKfId></AuthAddOpenKfId></xml>")
	require.NoError(t, srv.NotifyXML(context.Background(), rc.ts.URL, inner))
	evs := rc.got()
	require.Len(t, evs, 1)
	assert.Equal(t, "kf_account_auth_change", evs[0].Event)
	assert.Equal(t, []string{srv.OpenKfID()}, evs[0].AuthAddOpenKfID)
}

// With a callback URL set, every added message is pushed like WeCom does, retried on failure.
func TestAutomaticCallbacks(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	defer srv.Close()
	rc := newReceiver(t, srv)
	srv.SetCallbackURL(rc.ts.URL)
	srv.AddText(customer, "one")
	srv.EnterSession(other, "", "")
	require.Eventually(t, func() bool { return len(rc.got()) == 2 }, 5*time.Second, 5*time.Millisecond)

	rc.status.Store(http.StatusInternalServerError)
	srv.AddText(customer, "two")
	require.Eventually(t, func() bool { return len(rc.got()) == 5 }, 5*time.Second, 5*time.Millisecond,
		"3 attempts in total")
	time.Sleep(700 * time.Millisecond)
	assert.Len(t, rc.got(), 5, "no 4th attempt")
	srv.SetCallbackURL("")
	srv.AddText(customer, "three")
}

func TestCloseStopsPendingCallbacks(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer(kftest.WithCallbackTimeout(10 * time.Second))
	rc := newReceiver(t, srv)
	rc.delay.Store(int64(5 * time.Second))
	srv.SetCallbackURL(rc.ts.URL)
	srv.AddText(customer, "x")
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	srv.Close()
	assert.Less(t, time.Since(start), 2*time.Second)
	srv.AddText(customer, "after close") // no panic, no delivery
}
