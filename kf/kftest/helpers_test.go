package kftest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/kf/kftest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// api is a deliberately plain WeCom client: net/http + encoding/json, no package kf.
type api struct {
	t     testing.TB
	srv   *kftest.Server
	hc    *http.Client
	token string
}

// reply is a decoded JSON answer.
type reply struct {
	Code   int    `json:"errcode"`
	Msg    string `json:"errmsg"`
	Fields map[string]json.RawMessage
	Raw    []byte
	Status int
	Header http.Header
}

func (r reply) str(key string) string {
	var s string
	if raw, ok := r.Fields[key]; ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

func (r reply) int(key string) int {
	var n int
	if raw, ok := r.Fields[key]; ok {
		_ = json.Unmarshal(raw, &n)
	}
	return n
}

func (r reply) into(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Raw, v), string(r.Raw))
}

const (
	customer = "wmCustomerAAAAAAAAAAAAAAAAAAAAAAAA"
	other    = "wmCustomerBBBBBBBBBBBBBBBBBBBBBBBB"
)

// newAPI starts a Server (closed at test end) and fetches an access_token.
func newAPI(t testing.TB, opts ...kftest.Option) (*kftest.Server, *api) {
	t.Helper()
	srv := kftest.NewServer(opts...)
	t.Cleanup(srv.Close)
	a := &api{t: t, srv: srv, hc: srv.HTTPServer().Client()}
	a.token = a.fetchToken()
	return srv, a
}

func (a *api) fetchToken() string {
	a.t.Helper()
	r := a.get("/cgi-bin/gettoken", url.Values{"corpid": {a.srv.CorpID()}, "corpsecret": {a.srv.Secret()}}, false)
	require.Equal(a.t, 0, r.Code, r.Msg)
	return r.str("access_token")
}

func (a *api) url(path string, q url.Values, auth bool) string {
	if q == nil {
		q = url.Values{}
	}
	if auth {
		q.Set("access_token", a.token)
	}
	return a.srv.URL() + path + "?" + q.Encode()
}

func (a *api) do(req *http.Request) reply {
	a.t.Helper()
	resp, err := a.hc.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	r := reply{Raw: b, Status: resp.StatusCode, Header: resp.Header}
	if json.Valid(b) {
		_ = json.Unmarshal(b, &r)
		_ = json.Unmarshal(b, &r.Fields)
	}
	return r
}

func (a *api) get(path string, q url.Values, auth bool) reply {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.url(path, q, auth), nil)
	require.NoError(a.t, err)
	return a.do(req)
}

// post sends body (marshalled unless []byte/string) to path with the access_token.
func (a *api) post(path string, body any) reply {
	a.t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(a.t, err)
	}
	req, err := http.NewRequest(http.MethodPost, a.url(path, nil, true), bytes.NewReader(b))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	return a.do(req)
}

type obj = map[string]any

func (a *api) sendText(user, content string) reply {
	a.t.Helper()
	return a.post("/cgi-bin/kf/send_msg", obj{"touser": user, "open_kfid": a.srv.OpenKfID(), "msgtype": "text",
		"text": obj{"content": content}})
}

func (a *api) send(body obj) reply {
	a.t.Helper()
	if _, ok := body["touser"]; !ok {
		body["touser"] = customer
	}
	if _, ok := body["open_kfid"]; !ok {
		body["open_kfid"] = a.srv.OpenKfID()
	}
	return a.post("/cgi-bin/kf/send_msg", body)
}

func (a *api) upload(kind, field, filename string, data []byte) reply {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, err := mw.CreateFormFile(field, filename)
	require.NoError(a.t, err)
	_, _ = w.Write(data)
	require.NoError(a.t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, a.url("/cgi-bin/media/upload", url.Values{"type": {kind}}, true), &buf)
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return a.do(req)
}

// syncPage is a decoded sync_msg answer.
type syncPage struct {
	Code       int               `json:"errcode"`
	Msg        string            `json:"errmsg"`
	NextCursor string            `json:"next_cursor"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

type item struct {
	MsgID          string          `json:"msgid"`
	OpenKfID       string          `json:"open_kfid"`
	ExternalUserID string          `json:"external_userid"`
	SendTime       int64           `json:"send_time"`
	Origin         int             `json:"origin"`
	ServicerUserID string          `json:"servicer_userid"`
	MsgType        string          `json:"msgtype"`
	Text           *textItem       `json:"text"`
	Event          map[string]any  `json:"event"`
	Image          *mediaItem      `json:"image"`
	Raw            json.RawMessage `json:"-"`
}

type textItem struct {
	Content string `json:"content"`
	MenuID  string `json:"menu_id"`
}

type mediaItem struct {
	MediaID string `json:"media_id"`
}

func (a *api) sync(body obj) syncPage {
	a.t.Helper()
	if _, ok := body["open_kfid"]; !ok {
		body["open_kfid"] = a.srv.OpenKfID()
	}
	var p syncPage
	a.post("/cgi-bin/kf/sync_msg", body).into(a.t, &p)
	return p
}

func items(t testing.TB, p syncPage) []item {
	t.Helper()
	out := make([]item, len(p.MsgList))
	for i, raw := range p.MsgList {
		require.NoError(t, json.Unmarshal(raw, &out[i]))
		out[i].Raw = raw
	}
	return out
}

// syncAll pulls pages until has_more is 0 and returns the items and the last cursor.
func (a *api) syncAll(cursor string, limit int) ([]item, string, int) {
	a.t.Helper()
	var all []item
	pages := 0
	for {
		body := obj{"cursor": cursor}
		if limit > 0 {
			body["limit"] = limit
		}
		p := a.sync(body)
		require.Equal(a.t, 0, p.Code, p.Msg)
		pages++
		all = append(all, items(a.t, p)...)
		cursor = p.NextCursor
		if p.HasMore == 0 {
			return all, cursor, pages
		}
		require.Less(a.t, pages, 10000, "paging does not end")
	}
}

var t0 = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

func clockAt(t time.Time) *kftest.ManualClock { return kftest.NewManualClock(t) }

func jsonString(raw json.RawMessage, s *string) error { return json.Unmarshal(raw, s) }
