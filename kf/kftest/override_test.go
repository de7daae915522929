package kftest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func TestFailWithAndHandle(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	var mu sync.Mutex
	var recs []kftest.Record
	cancel := srv.Observe(func(r kftest.Record) { mu.Lock(); recs = append(recs, r); mu.Unlock() })
	defer cancel()

	const ipMsg = "not allow to access from your ip, hint: [1700000000_1_abc], from ip: 203.0.113.7, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
	srv.FailWith("/cgi-bin/gettoken", 60020, ipMsg)
	r := a.get("/cgi-bin/gettoken", url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}, false)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, 60020, r.Code)
	assert.Equal(t, ipMsg, r.Msg)
	assert.Equal(t, 1+1, srv.Calls("/cgi-bin/gettoken"), "the overridden call is counted")

	srv.FailWith("/cgi-bin/kf/sync_msg", 95017, "api forbidden")
	r = a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()})
	assert.Equal(t, 95017, r.Code)

	// The override replaces the modelled endpoint only: others are untouched, and the state of the
	// fake did not change (the overridden gettoken issued no token, the old one still works).
	assert.Equal(t, 0, a.post("/cgi-bin/kf/service_state/get", obj{"open_kfid": srv.OpenKfID(), "external_userid": customer}).Code)

	rej := srv.Rejected()
	require.Len(t, rej, 2)
	assert.Equal(t, kftest.Rejection{Path: "/cgi-bin/gettoken", Code: 60020, Msg: ipMsg}, rej[0])
	assert.Equal(t, "/cgi-bin/kf/sync_msg", rej[1].Path)
	assert.Equal(t, 95017, rej[1].Code)
	assert.JSONEq(t, `{"open_kfid":"`+srv.OpenKfID()+`"}`, string(rej[1].Body), "the request body is recorded")

	// Removing the override brings the model back.
	srv.Handle("/cgi-bin/gettoken", nil)
	srv.Handle("/cgi-bin/kf/sync_msg", nil)
	a.token = a.fetchToken()
	assert.Equal(t, 0, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": srv.OpenKfID()}).Code)

	// A full handler: any path (even one the fake does not model), any answer.
	var seenMu sync.Mutex
	var seen []string
	srv.Handle("/cgi-bin/kf/new_api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ X string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		seenMu.Lock()
		seen = append(seen, r.URL.Query().Get("access_token"), body.X)
		seenMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","y":"z"}`))
	}))
	r = a.post("/cgi-bin/kf/new_api", obj{"x": "1"})
	assert.Equal(t, 0, r.Code)
	assert.Equal(t, `"z"`, string(r.Fields["y"]))
	seenMu.Lock()
	assert.Equal(t, []string{a.token, "1"}, seen, "the override sees the request as sent")
	seenMu.Unlock()
	srv.Handle("/cgi-bin/kf/new_api", nil)
	assert.Equal(t, http.StatusNotFound, a.post("/cgi-bin/kf/new_api", obj{}).Status)

	mu.Lock()
	defer mu.Unlock()
	var got []kftest.Record
	for _, rec := range recs {
		if rec.Path == "/cgi-bin/gettoken" && rec.ErrCode == 60020 || rec.Path == "/cgi-bin/kf/new_api" && rec.Status == http.StatusOK {
			got = append(got, rec)
		}
	}
	require.Len(t, got, 2, "overridden calls are observed")
	assert.NotContains(t, got[0].Query, srv.Secret(), "secrets stay redacted")
	assert.JSONEq(t, `{"errcode":60020,"errmsg":`+quote(ipMsg)+`}`, string(got[0].Response))
	assert.JSONEq(t, `{"x":"1"}`, string(got[1].Request))
	assert.JSONEq(t, `{"errcode":0,"errmsg":"ok","y":"z"}`, string(got[1].Response))
}

func TestHandleWithFaults(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.FailWith("/cgi-bin/kf/send_msg", 48002, "api forbidden")
	srv.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{"/cgi-bin/kf/send_msg"}})
	assert.Equal(t, kftest.CodeBusy, a.sendText(customer, "x").Code, "faults apply in front of an override")
	srv.SetFaults(kftest.Faults{})
	assert.Equal(t, 48002, a.sendText(customer, "x").Code)

	// A dropped call after processing runs the override but the client sees no answer.
	var n atomic.Int32
	srv.Handle("/cgi-bin/kf/send_msg", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","msgid":"m"}`))
	}))
	srv.SetFaults(kftest.Faults{DropRate: 1, DropAfterProcessing: true, Paths: []string{"/cgi-bin/kf/send_msg"}})
	req, err := http.NewRequest(http.MethodPost, a.url("/cgi-bin/kf/send_msg", nil, true), nil)
	require.NoError(t, err)
	_, err = a.hc.Do(req)
	require.Error(t, err)
	assert.Equal(t, int32(1), n.Load())
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Options behave alike: a nil Option is ignored; an invalid value is never silently replaced by a
// default: NewServer panics naming the option (it has no error to return, like httptest.NewServer).
func TestServerOptions(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer(nil, kftest.WithPageSize(2), nil)
	srv.Close()
	for want, opt := range map[string]kftest.Option{
		"WithPageSize(0)":       kftest.WithPageSize(0),
		"WithPageSize(1001)":    kftest.WithPageSize(1001),
		"WithTokenTTL(0s)":      kftest.WithTokenTTL(0),
		"WithClock":             kftest.WithClock(nil),
		"WithLogger":            kftest.WithLogger(nil),
		"WithCorpID":            kftest.WithCorpID(""),
		"WithSecret":            kftest.WithSecret(""),
		"WithCallbackTimeout":   kftest.WithCallbackTimeout(-time.Second),
		"WithCallbackTransport": kftest.WithCallbackTransport(nil),
		"WithCodeTTLs(0s, 1s)":  kftest.WithCodeTTLs(0, time.Second),
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				assert.Contains(t, msg, "kftest: NewServer: invalid option: "+want)
			}()
			kftest.NewServer(opt).Close()
		}()
	}
}
