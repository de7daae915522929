package kf

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// probe GETs h and returns the status and body.
func probe(t *testing.T, h http.Handler, method string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// readyz is the decoded JSON of ReadinessHandler.
type readyz struct {
	Status string `json:"status"`
	Store  struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"store"`
	Token struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"token"`
	Accounts []struct {
		OpenKfID    string    `json:"open_kfid"`
		LastPull    time.Time `json:"last_pull"`
		LastPullAge *float64  `json:"last_pull_age_s"`
		LeaseHeld   bool      `json:"lease_held"`
	} `json:"accounts"`
	QueueDepth  int   `json:"queue_depth"`
	DeadLetters int64 `json:"dead_letters"`
}

func getReadyz(t *testing.T, ch *Channel) (int, readyz) {
	t.Helper()
	code, body := probe(t, ch.ReadinessHandler(), http.MethodGet)
	var r readyz
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	return code, r
}

// Health reports the store, the token, each account's last pull and lease, the queues and the
// dead letters; the probes answer from it.
func TestHealthReportAndProbes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rep := e.ch.Health(ctx)
	assert.True(t, rep.Ready, "%+v", rep)
	assert.True(t, rep.Store.OK)
	assert.True(t, rep.Token.OK)
	assert.Empty(t, rep.Accounts)

	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text.Content == "broken" {
			return errors.New("template missing")
		}
		return r.Text(ctx, m.Text.Content)
	})
	e.srv.AddText("jay", "hi")
	e.srv.AddText("kim", "broken")
	e.notify()
	e.waitSent("jay", 1)
	e.settle()
	require.Eventually(t, func() bool { return e.ch.Stats().LeasesHeld == 0 && e.ch.Stats().Handled == 2 },
		5*time.Second, 5*time.Millisecond)
	rep = e.ch.Health(ctx)
	require.Len(t, rep.Accounts, 1)
	a := rep.Accounts[0]
	assert.Equal(t, e.srv.OpenKfID(), a.OpenKfID)
	assert.False(t, a.LastPull.IsZero())
	assert.Equal(t, rep.Time.Sub(a.LastPull), a.LastPullAge)
	assert.Less(t, a.LastPullAge, 5*time.Second)
	assert.False(t, a.LeaseHeld)
	assert.EqualValues(t, 1, rep.DeadLetters)
	assert.Zero(t, rep.QueueDepth)

	code, r := getReadyz(t, e.ch)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready", r.Status)
	assert.True(t, r.Store.OK)
	require.Len(t, r.Accounts, 1)
	assert.Equal(t, e.srv.OpenKfID(), r.Accounts[0].OpenKfID)
	require.NotNil(t, r.Accounts[0].LastPullAge)
	assert.EqualValues(t, 1, r.DeadLetters)
	code, body := probe(t, e.ch.LivenessHandler(), http.MethodGet)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, _ = probe(t, e.ch.ReadinessHandler(), http.MethodPost)
	assert.Equal(t, http.StatusMethodNotAllowed, code)

	require.NoError(t, e.ch.Shutdown(ctx))
	code, r = getReadyz(t, e.ch)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "stopping", r.Status)
	code, body = probe(t, e.ch.LivenessHandler(), http.MethodGet)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "stopped\n", body)
}

// Without an access token the Channel is not ready, and the report says why.
func TestReadyzWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.FailWith(pathGetToken, 40001, "invalid credential")
	code, r := getReadyz(t, e.ch)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "unready", r.Status)
	assert.True(t, r.Store.OK)
	assert.False(t, r.Token.OK)
	assert.Contains(t, r.Token.Error, "40001")
	assert.NotContains(t, r.Token.Error, e.srv.Secret())
	code, _ = probe(t, e.ch.LivenessHandler(), http.MethodGet)
	assert.Equal(t, http.StatusOK, code, "a WeCom problem is not a reason to restart the process")
}

// /readyz turns unready within one pull interval of redis-server stopping, and ready again when
// it is back.
func TestReadyzFollowsRedis(t *testing.T) {
	t.Parallel()
	addr, stop, restart := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	const pollEvery = 2 * time.Second
	e := newEnv(t, WithStores(redis.New(rdb, redis.WithPrefix("readyz:"))), WithPollInterval(pollEvery))
	e.ch.OnMessage(echo)
	e.srv.AddText("lea", "hi")
	e.notify()
	e.waitSent("lea", 1)
	code, r := getReadyz(t, e.ch)
	require.Equal(t, http.StatusOK, code, "%+v", r)

	stop()
	stopped := time.Now()
	require.Eventually(t, func() bool {
		code, r = getReadyz(t, e.ch)
		return code == http.StatusServiceUnavailable
	}, pollEvery, 20*time.Millisecond, "unready within one pull interval of Redis stopping")
	t.Logf("unready %s after redis-server stopped: %s", time.Since(stopped).Round(time.Millisecond), r.Store.Error)
	assert.Equal(t, "unready", r.Status)
	assert.False(t, r.Store.OK)
	assert.NotEmpty(t, r.Store.Error)
	assert.True(t, r.Token.OK, "the token is still cached")
	code, _ = probe(t, e.ch.LivenessHandler(), http.MethodGet)
	assert.Equal(t, http.StatusOK, code)

	restart()
	restarted := time.Now()
	require.Eventually(t, func() bool {
		code, _ = getReadyz(t, e.ch)
		return code == http.StatusOK
	}, 5*pollEvery, 20*time.Millisecond, "ready again once Redis is back")
	t.Logf("ready %s after redis-server restarted", time.Since(restarted).Round(time.Millisecond))
}
