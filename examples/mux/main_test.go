package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/examples/exampletest"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// testApp is newApp served by an httptest server, with kftest as WeCom; traceOut receives the
// spans (nil: no tracing).
func testApp(t *testing.T, traceOut io.Writer) (*kftest.Server, *httptest.Server, *kf.Channel, *telemetry) {
	t.Helper()
	wecom := kftest.NewServer()
	t.Cleanup(wecom.Close)
	cfg := &config.Config{CorpID: wecom.CorpID(), Secret: wecom.Secret(), Token: wecom.CallbackToken(),
		AESKey: wecom.EncodingAESKey(), APIBase: wecom.URL(), CursorDir: t.TempDir(), SkipHistory: true}
	opts, closeStores, err := cfg.ChannelOptions()
	require.NoError(t, err)
	t.Cleanup(closeStores)
	tel, err := newTelemetry(traceOut)
	require.NoError(t, err)
	h, ch, err := newApp(cfg.KF(), slog.New(slog.DiscardHandler), tel, opts...)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return wecom, hs, ch, tel
}

// The service's routes work beside the Channel, and a kftest callback through the mux reaches
// the bot.
func TestRoutesBesideTheChannel(t *testing.T) {
	t.Parallel()
	wecom, hs, ch, _ := testApp(t, nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, ch.Shutdown(ctx))
	}()

	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/readyz", 200, ""},
		{"HEAD", "/healthz", 200, ""},
		{"POST", "/healthz", 405, ""},
		{"GET", "/", 200, "my existing service\n"},
		{"GET", "/elsewhere", 404, ""},
		{"PUT", "/wxkf/", 405, ""},     // the Channel answers its own paths
		{"GET", "/wxkf/?x=1", 400, ""}, // an unsigned verification
	} {
		status, body := get(t, tc.method, hs.URL+tc.path)
		assert.Equal(t, tc.status, status, "%s %s", tc.method, tc.path)
		if tc.body != "" {
			assert.Equal(t, tc.body, body, "%s %s", tc.method, tc.path)
		}
	}

	for _, path := range []string{"/wxkf", "/wxkf/"} {
		require.NoError(t, wecom.VerifyURL(context.Background(), hs.URL+path), path)
	}
	wecom.AddText("alice", "你好")
	require.NoError(t, wecom.Notify(context.Background(), hs.URL+"/wxkf/", wecom.OpenKfID()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := wecom.WaitSentTo(ctx, wecom.OpenKfID(), "alice", 1)
	require.NoError(t, err)
	assert.Equal(t, "您说：你好", sent[0].Text)
}

// run serves on the configured port and, when its context ends (SIGTERM), stops the server, lets
// the reply in progress finish and saves the cursor before returning.
func TestRunShutsDownGracefully(t *testing.T) {
	t.Parallel()
	wecom := kftest.NewServer()
	defer wecom.Close()
	dir, state := t.TempDir(), t.TempDir()
	port := freePort(t)
	raw, err := json.Marshal(map[string]any{
		"wechatcom_corp_id": wecom.CorpID(), "wechatcom_kf_secret": wecom.Secret(),
		"wechatcom_kf_token": wecom.CallbackToken(), "wechatcom_kf_aes_key": wecom.EncodingAESKey(),
		"wechatcom_kf_api_base": wecom.URL(), "wechatcom_kf_cursor_dir": state, "wechatcom_kf_port": port,
	})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run(ctx, dir, slog.New(slog.DiscardHandler)) }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 10*time.Millisecond)

	// A slow WeCom: the reply takes 500 ms. Stop while it is on its way.
	wecom.SetFaults(kftest.Faults{Latency: 500 * time.Millisecond, Paths: []string{"/cgi-bin/kf/send_msg"}})
	wecom.AddText("bob", "在吗")
	require.NoError(t, wecom.Notify(context.Background(), base+"/wxkf/", wecom.OpenKfID()))
	require.Eventually(t, func() bool { return wecom.Calls("/cgi-bin/kf/send_msg") > 0 }, 10*time.Second, time.Millisecond)
	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return")
	}
	sent := wecom.SentTo(wecom.OpenKfID(), "bob")
	require.Len(t, sent, 1, "the reply in progress was finished")
	assert.Equal(t, "您说：在吗", sent[0].Text)
	cursors, err := os.ReadFile(filepath.Join(state, "wechatcom_kf_cursors.json"))
	require.NoError(t, err)
	assert.Contains(t, string(cursors), wecom.OpenKfID(), "the cursor was saved")
	_, err = http.Get(base + "/healthz")
	assert.Error(t, err, "the server is closed")
}

func TestRunNamesMissingConfig(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "wechatcom_corp_id")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// /metrics is a real Prometheus scrape: after one message, the text format parses with expfmt and
// holds the SDK's counters, histograms and gauges with the values of that message; the spans of
// its callback, pull, handler run and API calls are printed as JSON.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	var traces exampletest.Buffer
	wecom, hs, ch, tel := testApp(t, &traces)

	wecom.AddText("carol", "几点了")
	require.NoError(t, wecom.Notify(context.Background(), hs.URL+"/wxkf/", wecom.OpenKfID()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := wecom.WaitSentTo(ctx, wecom.OpenKfID(), "carol", 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return ch.Stats().Handled == 1 }, 10*time.Second, 5*time.Millisecond)

	resp, err := http.Get(hs.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)

	// value returns the value of the one sample of family with the given labels.
	value := func(family string, labels map[string]string) float64 {
		t.Helper()
		mf, ok := families[family]
		require.True(t, ok, "no family %s", family)
		var found []float64
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			match := true
			for k, v := range labels {
				if got[k] != v {
					match = false
				}
			}
			if !match {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				found = append(found, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				found = append(found, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				found = append(found, float64(m.GetHistogram().GetSampleCount()))
			}
		}
		require.Len(t, found, 1, "%s%v", family, labels)
		return found[0]
	}
	kfid := wecom.OpenKfID()
	assert.EqualValues(t, 1, value("wxkf_callback_count_total", map[string]string{"wxkf_callback_result": "accepted"}))
	assert.EqualValues(t, 1, value("wxkf_message_count_total", map[string]string{
		"wxkf_open_kfid": kfid, "wxkf_msgtype": "text", "wxkf_origin": "3"}))
	assert.EqualValues(t, 1, value("wxkf_handler_duration_seconds", map[string]string{
		"wxkf_open_kfid": kfid, "wxkf_outcome": "ok"}))
	assert.EqualValues(t, 1, value("wxkf_send_count_total", map[string]string{
		"wxkf_open_kfid": kfid, "wxkf_outcome": "accepted", "wxkf_errcode": "0"}))
	assert.EqualValues(t, 1, value("wxkf_send_duration_seconds", map[string]string{"wxkf_outcome": "accepted"}))
	assert.EqualValues(t, 1, value("wxkf_api_call_count_total", map[string]string{
		"wxkf_api_path": "/cgi-bin/kf/send_msg", "wxkf_errcode": "0"}))
	assert.EqualValues(t, wecom.Calls("/cgi-bin/kf/sync_msg"), value("wxkf_api_call_duration_seconds", map[string]string{
		"wxkf_api_path": "/cgi-bin/kf/sync_msg"}))
	assert.EqualValues(t, 1, value("wxkf_token_refresh_count_total", map[string]string{"wxkf_outcome": "ok"}))
	assert.EqualValues(t, 0, value("wxkf_message_in_flight", nil))
	assert.GreaterOrEqual(t, value("wxkf_cursor_lag_seconds", map[string]string{"wxkf_open_kfid": kfid}), 0.0)
	assert.Contains(t, families, "go_goroutines", "the service's own collectors beside the SDK's")

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	require.NoError(t, ch.Shutdown(sctx))
	require.NoError(t, tel.shutdown(sctx)) // flushes the spans
	for _, name := range []string{`"wxkf.callback"`, `"wxkf.pull"`, `"wxkf.message"`, `"POST /cgi-bin/kf/send_msg"`} {
		assert.Contains(t, traces.String(), `"Name": `+name)
	}
	assert.NotContains(t, traces.String(), "carol", "no external_userid in traces unless asked")
}
