package kf_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// 100 concurrent callers on a cold cache cause exactly one gettoken (single flight, §3).
func TestTokenSingleFlightColdCache(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s := newStub(t)
	s.tokenLag = 50 * time.Millisecond
	c := s.client(t, kf.WithHTTPClient(&http.Client{Transport: tr}))

	var wg sync.WaitGroup
	tokens := make([]string, 100)
	errs := make([]error, 100)
	start := make(chan struct{})
	for i := range 100 {
		wg.Go(func() {
			<-start
			tokens[i], errs[i] = c.AccessToken(context.Background())
		})
	}
	close(start)
	wg.Wait()
	for i := range 100 {
		require.NoError(t, errs[i])
		assert.Equal(t, stubToken(1), tokens[i])
	}
	assert.EqualValues(t, 1, s.tokenN.Load(), "exactly one gettoken")
	s.srv.Close()
	tr.CloseIdleConnections()
}

// The same against kftest, through real API calls: 100 concurrent sync_msg on a cold client.
func TestTokenSingleFlightKftest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	srv := kftest.NewServer()
	c, err := kf.NewClient(srv.CorpID(), srv.Secret(), kf.WithBaseURL(srv.URL()), kf.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 100 {
		wg.Go(func() {
			if _, err := c.SyncMsg(context.Background(), kf.SyncMsgRequest{OpenKfID: srv.OpenKfID()}); err != nil {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, failures.Load())
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"))
	assert.Equal(t, 100, srv.Calls("/cgi-bin/kf/sync_msg"))
	tr.CloseIdleConnections()
	srv.Close()
}

// recordingStore is a TokenStore that records what it is given.
type recordingStore struct {
	*kf.MemoryTokenStore
	mu      sync.Mutex
	keys    []string
	ttls    []time.Duration
	getErr  error
	setErr  error
	getHits atomic.Int32
}

func (s *recordingStore) Get(ctx context.Context, key string) (string, time.Duration, error) {
	s.getHits.Add(1)
	if s.getErr != nil {
		return "", 0, s.getErr
	}
	return s.MemoryTokenStore.Get(ctx, key)
}

func (s *recordingStore) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.ttls = append(s.ttls, ttl)
	s.mu.Unlock()
	if s.setErr != nil {
		return s.setErr
	}
	return s.MemoryTokenStore.Set(ctx, key, value, ttl)
}

// Replicas sharing a store share one token: the second client never calls gettoken.
func TestTokenSharedStore(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	store := &recordingStore{MemoryTokenStore: kf.NewMemoryTokenStore()}
	a := s.client(t, kf.WithTokenStore(store))
	b := s.client(t, kf.WithTokenStore(store))
	ta, err := a.AccessToken(context.Background())
	require.NoError(t, err)
	tb, err := b.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ta, tb)
	assert.EqualValues(t, 1, s.tokenN.Load())

	require.Len(t, store.keys, 1)
	assert.NotContains(t, store.keys[0], stubSecret, "the store key never holds the secret")
	assert.Contains(t, store.keys[0], stubCorp)
	assert.Equal(t, 7200*time.Second, store.ttls[0], "stored for expires_in")

	// A different secret of the same corp has its own token (§3).
	other, err := kf.NewClient(stubCorp, "another-secret", kf.WithBaseURL(s.srv.URL), kf.WithTokenStore(store))
	require.NoError(t, err)
	_, err = other.AccessToken(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 2, s.tokenN.Load())
}

// A stored token within the refresh margin of its expiry is not used; one outside it is.
func TestTokenEarlyRefreshFromStore(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	store := &recordingStore{MemoryTokenStore: kf.NewMemoryTokenStore()}
	c := s.client(t, kf.WithTokenStore(store), kf.WithTokenRefreshMargin(5*time.Minute))
	_, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	key := store.keys[0]

	// Another replica wrote a token that expires in 4 minutes: inside the margin → refetch.
	c2 := s.client(t, kf.WithTokenStore(store), kf.WithTokenRefreshMargin(5*time.Minute))
	require.NoError(t, store.MemoryTokenStore.Set(context.Background(), key, "NEARLY-EXPIRED", 4*time.Minute))
	tok, err := c2.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(2), tok)
	assert.EqualValues(t, 2, s.tokenN.Load())

	// A token with 10 minutes left is used as is.
	c3 := s.client(t, kf.WithTokenStore(store), kf.WithTokenRefreshMargin(5*time.Minute))
	require.NoError(t, store.MemoryTokenStore.Set(context.Background(), key, "FRESH-ENOUGH", 10*time.Minute))
	tok, err = c3.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "FRESH-ENOUGH", tok)
	assert.EqualValues(t, 2, s.tokenN.Load())
}

// The in-memory token is refreshed early: with expires_in 7200 s and a 5 min margin it is refetched
// after 6900 s, not used until it expires. The client's clock moves; nothing sleeps.
func TestTokenEarlyRefreshInMemory(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	clk := kftest.NewManualClock(time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC))
	c := s.client(t, kf.WithTokenRefreshMargin(5*time.Minute), kf.WithClock(clk.Now))
	tok, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(1), tok)
	clk.Advance(6900*time.Second - time.Millisecond)
	tok, err = c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(1), tok, "fresh: cached")
	clk.Advance(time.Millisecond)
	tok, err = c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(2), tok, "inside the margin: refreshed before expiry")
	assert.EqualValues(t, 2, s.tokenN.Load())
}

// The default in-process store follows the client's clock too: a stored token expires with it.
func TestTokenClockDrivesDefaultStore(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.tokenFn = func(n int) (int, string) {
		return 200, `{"errcode":0,"errmsg":"ok","access_token":"` + stubToken(n) + `","expires_in":3}`
	}
	clk := kftest.NewManualClock(time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC))
	c := s.client(t, kf.WithTokenRefreshMargin(2*time.Second), kf.WithClock(clk.Now))
	tok, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(1), tok)
	clk.Advance(1300 * time.Millisecond) // past half the life of a 3 s token with a 2 s margin
	tok, err = c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(2), tok)
}

// After 40001 the client waits out a cooldown before it calls gettoken again (doc 91039: wrong
// secrets get the IP banned); the clock decides when it is over.
func TestTokenInvalidSecretCooldownEnds(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	defer srv.Close()
	clk := kftest.NewManualClock(time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC))
	c, err := kf.NewClient(srv.CorpID(), "wrong-secret", kf.WithBaseURL(srv.URL()), kf.WithClock(clk.Now))
	require.NoError(t, err)
	for range 3 {
		_, err = c.AccessToken(context.Background())
		require.ErrorIs(t, err, kf.ErrInvalidSecret)
	}
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"))
	clk.Advance(29 * time.Second)
	_, err = c.AccessToken(context.Background())
	require.ErrorIs(t, err, kf.ErrInvalidSecret)
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"), "still cooling down")
	clk.Advance(time.Second)
	_, err = c.AccessToken(context.Background())
	require.ErrorIs(t, err, kf.ErrInvalidSecret)
	assert.Equal(t, 2, srv.Calls("/cgi-bin/gettoken"), "tried again after 30 s")
}

// 40014, 42001 and 41001 invalidate the token, refetch and retry exactly once, on any endpoint.
func TestTokenRejectedRetriedOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"40014", "42001", "41001"} {
		t.Run(code, func(t *testing.T) {
			t.Parallel()
			s := newStub(t)
			s.apiFn = func(path string, n int) (int, string) {
				if n == 1 {
					return 200, `{"errcode":` + code + `,"errmsg":"token problem"}`
				}
				return 200, `{"errcode":0,"errmsg":"ok","msgid":"m1"}`
			}
			c := s.client(t)
			// send_msg without a client msgid: a rejected token proves nothing was sent, so retrying is safe.
			id, err := c.SendMsg(context.Background(), kf.SendMsgRequest{ToUser: "wm", OpenKfID: "wk", Content: kf.NewText("x")})
			require.NoError(t, err)
			assert.Equal(t, "m1", id)
			assert.Equal(t, 2, s.count("/cgi-bin/kf/send_msg"))
			assert.EqualValues(t, 2, s.tokenN.Load(), "token refetched")
			assert.Equal(t, []string{stubToken(1), stubToken(2)}, s.usedTokens(), "the retry used the new token")
		})
	}

	// A token that keeps being rejected: one retry, then the error.
	s := newStub(t)
	s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":42001,"errmsg":"expired"}` }
	c := s.client(t, kf.WithRetry(5, time.Millisecond, time.Millisecond))
	_, err := c.SyncMsg(context.Background(), kf.SyncMsgRequest{OpenKfID: "wk"})
	require.ErrorIs(t, err, kf.ErrTokenExpired)
	assert.Equal(t, 2, s.count("/cgi-bin/kf/sync_msg"))
	assert.EqualValues(t, 2, s.tokenN.Load())
}

// kftest's InvalidateTokens / ExpireTokens: the client recovers transparently.
func TestTokenInvalidatedByServer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	_, err := f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: f.srv.OpenKfID()})
	require.NoError(t, err)
	f.srv.InvalidateTokens()
	_, err = f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: f.srv.OpenKfID()})
	require.NoError(t, err)
	f.srv.ExpireTokens()
	_, err = f.c.GetServiceState(ctx, f.srv.OpenKfID(), "wmX")
	require.NoError(t, err)
	assert.Equal(t, 3, f.srv.Calls("/cgi-bin/gettoken"))
	assert.Equal(t, 3, f.srv.AccessTokens())
}

// Concurrent calls that all fail with the same expired token invalidate it once: the fresh token
// fetched by the first retry is not thrown away by the others.
func TestTokenInvalidateIsCompareAndSwap(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	_, err := f.c.AccessToken(ctx)
	require.NoError(t, err)
	f.srv.ExpireTokens()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := f.c.GetServiceState(ctx, f.srv.OpenKfID(), "wmX")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, 2, f.srv.Calls("/cgi-bin/gettoken"), "one refresh for the whole burst")
}

// InvalidateToken forces a new token and never takes the old one back from the store.
func TestInvalidateToken(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	store := kf.NewMemoryTokenStore()
	c := s.client(t, kf.WithTokenStore(store))
	first, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	c.InvalidateToken(context.Background())
	second, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, first, second)
	assert.EqualValues(t, 2, s.tokenN.Load())
}

// 40001 (bad secret) is not retried and not repeated for a while: wrong secrets get the IP banned.
func TestTokenInvalidSecretNotRetried(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	defer srv.Close()
	c, err := kf.NewClient(srv.CorpID(), "wrong-secret", kf.WithBaseURL(srv.URL()), kf.WithRetry(5, time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	_, err = c.AccessToken(context.Background())
	require.ErrorIs(t, err, kf.ErrInvalidSecret)
	assert.Contains(t, err.Error(), "40001")
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"), "never retried")

	_, err = c.SyncMsg(context.Background(), kf.SyncMsgRequest{OpenKfID: srv.OpenKfID()})
	require.ErrorIs(t, err, kf.ErrInvalidSecret)
	_, err = c.AccessToken(context.Background())
	require.ErrorIs(t, err, kf.ErrInvalidSecret)
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"), "cooldown: no repeated gettoken")
	assert.Equal(t, 0, srv.Calls("/cgi-bin/kf/sync_msg"), "no API call without a token")

	bad, err := kf.NewClient("wwWrongCorp", srv.Secret(), kf.WithBaseURL(srv.URL()))
	require.NoError(t, err)
	_, err = bad.AccessToken(context.Background())
	require.ErrorIs(t, err, kf.ErrInvalidCorpID)
}

// gettoken itself is retried on -1 like any idempotent call.
func TestTokenFetchRetriedOnBusy(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	s.tokenFn = func(n int) (int, string) {
		if n < 3 {
			return 200, `{"errcode":-1,"errmsg":"system busy"}`
		}
		return 200, `{"errcode":0,"errmsg":"ok","access_token":"OK-TOKEN","expires_in":7200}`
	}
	c := s.client(t, kf.WithRetry(3, time.Millisecond, time.Millisecond))
	tok, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "OK-TOKEN", tok)
	assert.EqualValues(t, 3, s.tokenN.Load())

	// Malformed gettoken replies are errors, not empty tokens.
	for _, body := range []string{
		`{"errcode":0,"errmsg":"ok","expires_in":7200}`,
		`{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":0}`,
		`{"errcode":0,"errmsg":"ok","access_token":"` + strings.Repeat("t", 513) + `","expires_in":7200}`,
	} {
		s := newStub(t)
		s.tokenFn = func(int) (int, string) { return 200, body }
		_, err := s.client(t).AccessToken(context.Background())
		require.ErrorIs(t, err, kf.ErrUnexpectedResponse, body)
	}
}

// A failing store is logged and bypassed: the token can always be recomputed.
func TestTokenStoreFailure(t *testing.T) {
	t.Parallel()
	s := newStub(t)
	var logs logBuffer
	store := &recordingStore{MemoryTokenStore: kf.NewMemoryTokenStore(), getErr: errors.New("redis down"), setErr: errors.New("redis down")}
	c := s.client(t, kf.WithTokenStore(store), kf.WithLogger(logs.logger()))
	tok, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(1), tok)
	assert.Contains(t, logs.String(), "token store get failed")
	assert.Contains(t, logs.String(), "token store set failed")
	_, err = c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, s.tokenN.Load(), "cached in memory meanwhile")
}

// A caller whose context ends stops waiting at once; the refresh it joined still completes and
// serves the next caller.
func TestTokenWaitHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tr := &http.Transport{}
	s := newStub(t)
	s.tokenLag = time.Second
	c := s.client(t, kf.WithHTTPClient(&http.Client{Transport: tr}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.AccessToken(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 700*time.Millisecond, "returned before the refresh finished")
	tok, err := c.AccessToken(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stubToken(1), tok)
	assert.EqualValues(t, 1, s.tokenN.Load(), "the detached refresh served the second caller")
	s.srv.Close()
	tr.CloseIdleConnections()
}

func TestMemoryTokenStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := kf.NewMemoryTokenStore()
	v, ttl, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Empty(t, v)
	assert.Zero(t, ttl)
	require.NoError(t, s.Set(ctx, "k", "v", time.Hour))
	v, ttl, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", v)
	assert.InDelta(t, time.Hour, ttl, float64(time.Second))
	require.NoError(t, s.Set(ctx, "k", "short", time.Millisecond))
	time.Sleep(5 * time.Millisecond)
	v, _, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Empty(t, v, "expired")
	require.NoError(t, s.Set(ctx, "k", "v", time.Hour))
	require.NoError(t, s.Set(ctx, "k", "", 0))
	v, _, _ = s.Get(ctx, "k")
	assert.Empty(t, v, "ttl 0 deletes")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = s.Get(cctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, s.Set(cctx, "k", "v", time.Hour), context.Canceled)
}
