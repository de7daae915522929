package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// FuzzPageAPI sends arbitrary requests to the page's API: whatever the body, the sandbox answers
// with one of the statuses it documents and never panics. The fake WeCom pushes no callbacks here,
// so only the request handling is exercised.
func FuzzPageAPI(f *testing.F) {
	sb, err := newSandbox(config{Log: nil}, "http://127.0.0.1:1", f.TempDir())
	require.NoError(f, err)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sb.ch.Shutdown(ctx)
		sb.close()
	})
	sb.srv.SetCallbackURL("")
	h := sb.routes()

	seeds := []struct{ path, ctype, body string }{
		{"/api/send", "application/json", `{"user":"u","text":"hi"}`},
		{"/api/send", "application/json", `{"user":"u","text":"hi","menu_id":"help"}`},
		{"/api/send", "application/json", `{"user":"","text":""}`},
		{"/api/send", "application/json", `[1,2,3]`},
		{"/api/enter", "application/json", `{"user":"u"}`},
		{"/api/voice", "application/json", `{"user":"u"}`},
		{"/api/fault", "application/json", `{"action":"expire_token"}`},
		{"/api/fault", "application/json", `{"action":"human","user":"u"}`},
		{"/api/upload", "multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nu\r\n--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello world\r\n--X--\r\n"},
		{"/api/upload", "multipart/form-data; boundary=X", "--X\r\n\r\n"},
		{"/api/upload", "text/plain", "x"},
	}
	for _, s := range seeds {
		f.Add(s.path, s.ctype, []byte(s.body))
	}
	allowed := []int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusTooManyRequests,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusMovedPermanently} // the mux cleans paths
	f.Fuzz(func(t *testing.T, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/api/events") ||
			strings.ContainsAny(path, " \t\r\n?#%") {
			return // the event stream never ends; other paths are static files
		}
		u, err := url.Parse("http://127.0.0.1:1" + path)
		if err != nil {
			return // no client can send it
		}
		req := httptest.NewRequest(http.MethodPost, u.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !slices.Contains(allowed, rec.Code) {
			t.Fatalf("POST %s (%q, %q): HTTP %d %s", path, ctype, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			var e map[string]string
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e["error"] == "" {
				t.Fatalf("POST %s: HTTP %d without a JSON error: %q", path, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzRecordToLog: whatever kftest recorded, the log line is built without panicking and
// serialises to JSON the page can read.
func FuzzRecordToLog(f *testing.F) {
	f.Add("/cgi-bin/kf/sync_msg", []byte(`{"cursor":"x","token":"…"}`), []byte(`{"errcode":0,"next_cursor":"c","has_more":1,"msg_list":[{"msgtype":"event","event":{"event_type":"enter_session"}}]}`), 0)
	f.Add("/cgi-bin/kf/send_msg", []byte(`{"touser":"u","msgid":"a_0","msgtype":"text","text":{"content":"x"}}`), []byte(`{"errcode":40058,"errmsg":"dup"}`), 40058)
	f.Add("/cgi-bin/media/upload", []byte(`{"type":1,"size":"big"}`), []byte(`null`), 0)
	f.Add("/cgi-bin/kf/service_state/trans", []byte(`{"service_state":"3"}`), []byte(`{`), -1)
	f.Fuzz(func(t *testing.T, path string, req, resp []byte, code int) {
		for _, kind := range []string{kftest.RecordAPI, kftest.RecordCallback} {
			l := recordToLog(kftest.Record{Kind: kind, Path: path, Request: req, Response: resp, ErrCode: code, Status: 200})
			if l.Kind == "" {
				t.Fatal("no kind")
			}
			if !json.Valid(req) || !json.Valid(resp) {
				continue // kftest only records JSON; the page's encoder needs valid raw JSON
			}
			if _, err := json.Marshal(l); err != nil {
				t.Fatalf("log line does not marshal: %v", err)
			}
		}
	})
}
