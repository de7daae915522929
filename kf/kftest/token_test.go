package kftest_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func TestGetToken(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	good := url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}

	r := a.get("/cgi-bin/gettoken", good, false)
	require.Equal(t, 0, r.Code)
	assert.Equal(t, a.token, r.str("access_token"), "a valid token is returned again while it lives")
	assert.LessOrEqual(t, len(r.str("access_token")), 512)
	assert.InDelta(t, 7200, r.int("expires_in"), 1)
	assert.Equal(t, 1, srv.AccessTokens())

	tests := []struct {
		name string
		q    url.Values
		code int
	}{
		{"wrong secret", url.Values{"corpid": {srv.CorpID()}, "corpsecret": {"nope"}}, kftest.CodeInvalidSecret},
		{"wrong corpid", url.Values{"corpid": {"wwnope"}, "corpsecret": {srv.Secret()}}, kftest.CodeInvalidCorpID},
		{"no corpid", url.Values{"corpsecret": {srv.Secret()}}, kftest.CodeMissingCorpID},
		{"no secret", url.Values{"corpid": {srv.CorpID()}}, kftest.CodeMissingSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.get("/cgi-bin/gettoken", tc.q, false)
			assert.Equal(t, tc.code, r.Code, r.Msg)
			assert.Empty(t, r.str("access_token"))
		})
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/cgi-bin/gettoken?"+good.Encode(), nil)
	assert.Equal(t, kftest.CodeRequireGET, a.do(req).Code)
}

func TestGetTokenOptions(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t, kftest.WithCorpID("wwother0000000001"), kftest.WithSecret("s3cr3t"), kftest.WithTokenTTL(time.Hour))
	assert.Equal(t, "wwother0000000001", srv.CorpID())
	assert.Equal(t, "s3cr3t", srv.Secret())
	r := a.get("/cgi-bin/gettoken", url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}, false)
	assert.InDelta(t, 3600, r.int("expires_in"), 1)
}

// Every cgi-bin endpoint requires a valid access_token (§3): 41001 missing, 40014 invalid.
func TestAccessTokenRequiredEverywhere(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	paths := []struct{ path, method string }{
		{"/cgi-bin/kf/sync_msg", "POST"}, {"/cgi-bin/kf/send_msg", "POST"}, {"/cgi-bin/kf/send_msg_on_event", "POST"},
		{"/cgi-bin/kf/service_state/get", "POST"}, {"/cgi-bin/kf/service_state/trans", "POST"},
		{"/cgi-bin/media/upload", "POST"}, {"/cgi-bin/media/get", "GET"},
		{"/cgi-bin/kf/account/add", "POST"}, {"/cgi-bin/kf/account/del", "POST"}, {"/cgi-bin/kf/account/update", "POST"},
		{"/cgi-bin/kf/account/list", "POST"}, {"/cgi-bin/kf/add_contact_way", "POST"},
		{"/cgi-bin/kf/servicer/add", "POST"}, {"/cgi-bin/kf/servicer/del", "POST"}, {"/cgi-bin/kf/servicer/list", "GET"},
		{"/cgi-bin/kf/customer/batchget", "POST"}, {"/cgi-bin/kf/get_corp_qualification", "GET"},
		{"/cgi-bin/kf/customer/get_upgrade_service_config", "GET"}, {"/cgi-bin/kf/customer/upgrade_service", "POST"},
		{"/cgi-bin/kf/customer/cancel_upgrade_service", "POST"}, {"/cgi-bin/kf/get_corp_statistic", "POST"},
		{"/cgi-bin/kf/get_servicer_statistic", "POST"}, {"/cgi-bin/kf/knowledge/add_group", "POST"},
		{"/cgi-bin/kf/knowledge/list_intent", "POST"},
	}
	for _, p := range paths {
		for _, tc := range []struct {
			name, query string
			code        int
		}{
			{"missing", "", kftest.CodeMissingToken},
			{"empty", "access_token=", kftest.CodeMissingToken},
			{"invalid", "access_token=" + strings.Repeat("x", 64), kftest.CodeInvalidToken},
		} {
			req, err := http.NewRequest(p.method, srv.URL()+p.path+"?"+tc.query, strings.NewReader(`{}`))
			require.NoError(t, err)
			r := a.do(req)
			assert.Equal(t, http.StatusOK, r.Status)
			assert.Equal(t, tc.code, r.Code, "%s %s", p.path, tc.name)
		}
	}
	// And a valid token passes the check on each of them (whatever the endpoint then says).
	for _, p := range paths {
		req, _ := http.NewRequest(p.method, a.url(p.path, nil, true), strings.NewReader(`{}`))
		r := a.do(req)
		assert.NotContains(t, []int{kftest.CodeMissingToken, kftest.CodeInvalidToken, kftest.CodeTokenExpired}, r.Code, p.path)
	}
}

func TestAccessTokenExpiresAfterTTL(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	require.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()}).Code)

	clk.Advance(7199 * time.Second)
	require.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()}).Code)
	r := a.get("/cgi-bin/gettoken", url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}, false)
	assert.Equal(t, a.token, r.str("access_token"))
	assert.Equal(t, 1, r.int("expires_in"), "the same token reports the seconds it has left")

	clk.Advance(time.Second)
	assert.Equal(t, kftest.CodeTokenExpired, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()}).Code)

	old := a.token
	a.token = a.fetchToken()
	assert.NotEqual(t, old, a.token, "a new token after expiry")
	assert.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()}).Code)
}

func TestInvalidateAndExpireTokens(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	body := obj{"open_kfid": srv.OpenKfID()}

	srv.InvalidateTokens()
	assert.Equal(t, kftest.CodeInvalidToken, a.post("/cgi-bin/kf/sync_msg", body).Code)
	old := a.token
	a.token = a.fetchToken()
	require.NotEqual(t, old, a.token)
	assert.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", body).Code)

	srv.ExpireTokens()
	assert.Equal(t, kftest.CodeTokenExpired, a.post("/cgi-bin/kf/sync_msg", body).Code)
	a.token = a.fetchToken()
	assert.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", body).Code)
	assert.Equal(t, 3, srv.AccessTokens())
}

func TestRequestFormatErrors(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	tests := []struct {
		name string
		path string
		body string
		code int
	}{
		{"malformed JSON", "/cgi-bin/kf/sync_msg", `{"open_kfid":`, kftest.CodeDataFormat},
		{"not an object", "/cgi-bin/kf/send_msg", `[1,2]`, kftest.CodeDataFormat},
		{"wrong field type", "/cgi-bin/kf/sync_msg", `{"open_kfid":"` + kfid + `","limit":"ten"}`, kftest.CodeDataFormat},
		{"invalid UTF-8", "/cgi-bin/kf/sync_msg", "{\"open_kfid\":\"" + kfid + "\",\"cursor\":\"\xff\"}", kftest.CodeDataFormat},
		{"lone surrogate", "/cgi-bin/kf/service_state/get", `{"open_kfid":"` + kfid + `","external_userid":"\ud800"}`, kftest.CodeDataFormat},
		{"lone low surrogate", "/cgi-bin/kf/service_state/get", `{"open_kfid":"` + kfid + `","external_userid":"\udc00x"}`, kftest.CodeDataFormat},
		{"empty body", "/cgi-bin/kf/sync_msg", ``, kftest.CodeEmptyPost},
		{"body too large", "/cgi-bin/kf/sync_msg", `{"cursor":"` + strings.Repeat("a", kftest.MaxRequestBytes) + `"}`, kftest.CodeContentTooLong},
		{"valid surrogate pair", "/cgi-bin/kf/service_state/get", `{"open_kfid":"` + kfid + `","external_userid":"\ud83d\ude00"}`, 0},
		{"escaped backslash before u", "/cgi-bin/kf/service_state/get", `{"open_kfid":"` + kfid + `","external_userid":"\\ud800"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.post(tc.path, tc.body)
			assert.Equal(t, http.StatusOK, r.Status)
			assert.Equal(t, tc.code, r.Code, r.Msg)
		})
	}
	// Wrong method: POST endpoint with GET → 43002; unknown path → HTTP 404.
	r := a.get("/cgi-bin/kf/sync_msg", nil, true)
	assert.Equal(t, kftest.CodeRequirePOST, r.Code)
	r = a.get("/cgi-bin/kf/nope", nil, true)
	assert.Equal(t, http.StatusNotFound, r.Status)
	req, _ := http.NewRequest(http.MethodDelete, a.url("/cgi-bin/kf/account/list", nil, true), nil)
	assert.Equal(t, kftest.CodeRequirePOST, a.do(req).Code)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var logMu sync.Mutex
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithCodeTTLs(time.Second, time.Minute),
		kftest.WithChannelsBinding(true),
		kftest.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	r := a.get("/cgi-bin/kf/get_corp_qualification", nil, true)
	assert.Equal(t, "true", string(r.Fields["wechat_channels_binding"]))

	code := srv.EnterSession(customer, "", "")
	clk.Advance(time.Second)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, code, obj{}).Code, "welcome TTL from WithCodeTTLs")

	a.sendText(customer, "") // a rejection is logged at debug level, without secrets
	_ = srv.Notify(context.Background(), "http://127.0.0.1:1/cb?access_token=leak", srv.OpenKfID())
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	assert.Contains(t, out, "44004")
	assert.Contains(t, out, "callback failed")
	for _, secret := range []string{a.token, srv.Secret(), "leak"} {
		assert.NotContains(t, out, secret)
	}
}

func TestWithCallbackURL(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer cb.Close()
	srv := kftest.NewServer(kftest.WithCallbackURL(cb.URL))
	defer srv.Close()
	srv.AddText(customer, "x")
	require.Eventually(t, func() bool { return hits.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
