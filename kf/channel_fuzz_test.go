package kf

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/wxkf/wxkf/kf/kftest"
)

// FuzzServeHTTP sends arbitrary callbacks: whatever the query and body, the handler answers
// without panicking, and never 200 unless the request was signed with the callback Token.
func FuzzServeHTTP(f *testing.F) {
	srv := kftest.NewServer()
	defer srv.Close()
	ch, err := NewChannel(kftestConfig(srv),
		WithStateDir(f.TempDir()), WithClientOptions(WithBaseURL(srv.URL())))
	if err != nil {
		f.Fatal(err)
	}
	defer ch.crash() // no pulls matter here; stop at once
	q, body := srv.SignedCallback(srv.OpenKfID())
	f.Add(http.MethodPost, q.Encode(), body)
	f.Add(http.MethodGet, "msg_signature=00&timestamp=1&nonce=2&echostr=QUJD", []byte(nil))
	f.Add(http.MethodPost, "msg_signature=0000000000000000000000000000000000000000", []byte("<xml><Encrypt>QUJD</Encrypt></xml>"))
	f.Fuzz(func(t *testing.T, method, rawQuery string, body []byte) {
		if method != http.MethodGet && method != http.MethodPost {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "/wxkf/", bytes.NewReader(body))
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		ch.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			vals, _ := url.ParseQuery(rawQuery)
			sig := vals.Get("msg_signature")
			if sig == "" {
				t.Fatalf("200 without a signature: %q", rawQuery)
			}
		}
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
