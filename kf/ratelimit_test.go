package kf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

var _ RateStore = (*redis.Store)(nil)

// rateStores returns the RateStores the semantics tests run against: this package's, and
// cursor/redis's on a single node and on a Cluster of three (one Redis each for the whole test).
func rateStores(t *testing.T) map[string]func(prefix string) RateStore {
	t.Helper()
	addr, _, _ := redistest.Start(t)
	single := goredis.NewClient(&goredis.Options{Addr: addr})
	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: redistest.StartCluster(t)})
	t.Cleanup(func() { _ = single.Close(); _ = cluster.Close() })
	return map[string]func(string) RateStore{
		"memory":  func(string) RateStore { return newMemRateStore() },
		"redis":   func(p string) RateStore { return redis.New(single, redis.WithPrefix(p)) },
		"cluster": func(p string) RateStore { return redis.New(cluster, redis.WithPrefix(p)) },
	}
}

// The GCRA, the pause and its backoff behave alike in every RateStore: a burst of Tolerance/Interval
// calls, then one call per Interval; no calls while paused; a pause doubles when the next one
// follows within reset, and starts over after; calls resume after a pause without a burst; corps and
// paths are apart.
func TestRateStoreSemantics(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	ctx := context.Background()
	for name, open := range rateStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("burst then steady", func(t *testing.T) {
				t.Parallel()
				s := open("burst:")
				rules := []RateRule{{Interval: 20 * time.Millisecond, Tolerance: 100 * time.Millisecond}}
				asked := time.Now()
				got, wait, paused, err := s.AdmitCalls(ctx, corp, path, 50, rules)
				require.NoError(t, err)
				assert.Equal(t, 5, got, "the burst")
				assert.False(t, paused)
				assert.Greater(t, wait, time.Duration(0))
				assert.LessOrEqual(t, wait, 20*time.Millisecond, "the next call fits one interval later")
				got, _, _, err = s.AdmitCalls(ctx, corp, path, 1, rules)
				require.NoError(t, err)
				assert.Equal(t, 0, got, "nothing left now")
				time.Sleep(wait + 2*time.Millisecond)
				got, _, _, err = s.AdmitCalls(ctx, corp, path, 50, rules)
				require.NoError(t, err)
				elapsed := time.Since(asked) // the sleep may overshoot on a busy machine
				assert.GreaterOrEqual(t, got, 1)
				assert.LessOrEqual(t, got, max(2, int(elapsed/rules[0].Interval)), "each interval gives back one call (%v passed)", elapsed)

				got, _, _, err = s.AdmitCalls(ctx, "wwother", path, 50, rules)
				require.NoError(t, err)
				assert.Equal(t, 5, got, "another corp has its own budget")
				got, _, _, err = s.AdmitCalls(ctx, corp, "/cgi-bin/kf/sync_msg", 50, rules)
				require.NoError(t, err)
				assert.Equal(t, 5, got, "another path has its own budget")
			})
			t.Run("every rule holds", func(t *testing.T) {
				t.Parallel()
				s := open("rules:")
				rules := []RateRule{
					{Interval: 10 * time.Millisecond, Tolerance: 100 * time.Millisecond},
					{Interval: 100 * time.Millisecond, Tolerance: 300 * time.Millisecond},
				}
				got, wait, _, err := s.AdmitCalls(ctx, corp, path, 50, rules)
				require.NoError(t, err)
				assert.Equal(t, 3, got, "the tighter rule")
				assert.Greater(t, wait, 50*time.Millisecond)
				assert.LessOrEqual(t, wait, 100*time.Millisecond)
			})
			t.Run("pause", func(t *testing.T) {
				t.Parallel()
				s := open("pause:")
				rules := []RateRule{{Interval: 150 * time.Millisecond, Tolerance: 600 * time.Millisecond}}
				const min, max, reset = 200 * time.Millisecond, 500 * time.Millisecond, 150 * time.Millisecond
				d, strike, err := s.PauseCalls(ctx, corp, path, min, max, reset)
				require.NoError(t, err)
				assert.Equal(t, min, d)
				assert.Equal(t, 1, strike)
				d2, strike, err := s.PauseCalls(ctx, corp, path, min, max, reset)
				require.NoError(t, err)
				assert.Equal(t, 0, strike, "a 45009 during the pause does not lengthen it")
				assert.LessOrEqual(t, d2, min)
				got, wait, paused, err := s.AdmitCalls(ctx, corp, path, 5, rules)
				require.NoError(t, err)
				assert.Equal(t, 0, got)
				assert.True(t, paused)
				assert.Greater(t, wait, 100*time.Millisecond)
				got, _, paused, err = s.AdmitCalls(ctx, "wwother", path, 5, rules)
				require.NoError(t, err)
				assert.False(t, paused, "another corp is not paused")
				assert.Equal(t, 4, got)

				time.Sleep(wait + 5*time.Millisecond)
				got, wait, paused, err = s.AdmitCalls(ctx, corp, path, 5, rules)
				require.NoError(t, err)
				assert.False(t, paused)
				assert.Equal(t, 1, got, "after a pause, one call goes first: the probe")
				assert.Greater(t, wait, 30*time.Millisecond, "the others wait a quarter of the first pause")
				got, held, paused, err := s.AdmitCalls(ctx, corp, path, 5, rules)
				require.NoError(t, err)
				assert.Equal(t, 0, got)
				assert.True(t, paused, "held back behind the probe")
				assert.LessOrEqual(t, held, min/4)
				time.Sleep(held + 5*time.Millisecond)
				got, _, _, err = s.AdmitCalls(ctx, corp, path, 5, rules)
				require.NoError(t, err)
				assert.GreaterOrEqual(t, got, 3, "then the budget left: the burst of 4 less the probe")
				assert.LessOrEqual(t, got, 4)

				d, strike, err = s.PauseCalls(ctx, corp, path, min, max, reset)
				require.NoError(t, err)
				assert.Equal(t, 2, strike, "within reset of the last pause: the next in the row")
				assert.Equal(t, 2*min, d)
				time.Sleep(d + 5*time.Millisecond)
				d, strike, err = s.PauseCalls(ctx, corp, path, min, max, reset)
				require.NoError(t, err)
				assert.Equal(t, 3, strike)
				assert.Equal(t, max, d, "capped")
				time.Sleep(d + reset + 20*time.Millisecond)
				d, strike, err = s.PauseCalls(ctx, corp, path, min, max, reset)
				require.NoError(t, err)
				assert.Equal(t, 1, strike, "past reset: the row starts over")
				assert.Equal(t, min, d)
			})
			t.Run("no rules: only the pause", func(t *testing.T) {
				t.Parallel()
				s := open("norules:")
				got, _, paused, err := s.AdmitCalls(ctx, corp, path, 7, nil)
				require.NoError(t, err)
				assert.Equal(t, 7, got)
				assert.False(t, paused)
			})
		})
	}
}

// testLimiter returns a limiter of this package on store with one ceiling for every path, no per-IP
// ceilings, and the given pause.
func testLimiter(t testing.TB, store RateStore, c RateCeiling, pause time.Duration) *rateLimiter {
	t.Helper()
	opts := []RateLimiterOption{WithRateCeilings("", c), WithIPRateCeilings(), WithRatePause(pause, 4*pause, pause)}
	if store != nil {
		opts = append(opts, WithRateStore(store))
	}
	l, err := NewRateLimiter(opts...)
	require.NoError(t, err)
	return l.(*rateLimiter)
}

// queued returns how many calls wait in l's gate for (corp, path).
func (l *rateLimiter) queued(corp, path string) int {
	g := l.gate(corp, path)
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// When the budget is short, calls go by priority: fresh replies first, then the calls of retried
// handlers, then sync_msg pulls without a token, each in arrival order.
func TestRateLimiterPriorities(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	l := testLimiter(t, nil, RateCeiling{Calls: 10, Per: time.Second}, time.Second) // a call every 105 ms, burst 1
	ctx := context.Background()
	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh)) // spend the burst: the next calls queue

	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	start := func(p Priority, name string) {
		n := l.queued(corp, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Wait(ctx, corp, path, p); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
		require.Eventually(t, func() bool { return l.queued(corp, path) > n }, time.Second, time.Millisecond, "%s queued", name)
	}
	for i := range 4 {
		start(PriorityBackground, fmt.Sprintf("b%d", i))
	}
	for i := range 4 {
		start(PriorityRetry, fmt.Sprintf("r%d", i))
	}
	for i := range 4 {
		start(PriorityFresh, fmt.Sprintf("f%d", i))
	}
	wg.Wait()
	// b0 may have been let through before the others queued (it was alone then).
	if order[0] == "b0" {
		order = order[1:]
		assert.Equal(t, []string{"f0", "f1", "f2", "f3", "r0", "r1", "r2", "r3", "b1", "b2", "b3"}, order)
		return
	}
	assert.Equal(t, []string{"f0", "f1", "f2", "f3", "r0", "r1", "r2", "r3", "b0", "b1", "b2", "b3"}, order)
}

// Across processes sharing a store, the priorities hold too: lower priorities may use only part of
// the burst, so while fresh calls keep the budget spent, background calls get (almost) nothing.
func TestRateLimiterPrioritiesAcrossReplicas(t *testing.T) {
	t.Parallel()
	for name, open := range rateStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open("prio:")
			const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
			c := RateCeiling{Calls: 400, Per: time.Second} // a call every 2.6 ms, burst 10
			fresh, background := testLimiter(t, store, c, time.Second), testLimiter(t, store, c, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
			defer cancel()
			var (
				mu     sync.Mutex
				nf, nb int
				wg     sync.WaitGroup
			)
			run := func(l *rateLimiter, p Priority, n *int) {
				for range 8 { // 8 callers each: a backlog on both sides
					wg.Add(1)
					go func() {
						defer wg.Done()
						for l.Wait(ctx, corp, path, p) == nil {
							mu.Lock()
							*n++
							mu.Unlock()
						}
					}()
				}
			}
			run(fresh, PriorityFresh, &nf)
			run(background, PriorityBackground, &nb)
			wg.Wait()
			t.Logf("fresh %d, background %d", nf, nb)
			assert.Greater(t, nf, 100)
			assert.Less(t, nb*10, nf, "background gets under a tenth")
			assert.LessOrEqual(t, nf+nb, 400*6/10+20, "the ceiling holds over both")
		})
	}
}

// A pause holds every call to the path for the corp until it ends; a call whose deadline comes first
// fails at once with ErrThrottled; other paths and corps go on.
func TestRateLimiterPause(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	l := testLimiter(t, nil, RateCeiling{Calls: 1000, Per: time.Second}, 300*time.Millisecond)
	ctx := context.Background()
	d, strike, err := l.Pause(ctx, corp, path)
	require.NoError(t, err)
	assert.Equal(t, 300*time.Millisecond, d)
	assert.Equal(t, 1, strike)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = l.Wait(short, corp, path, PriorityFresh)
	assert.ErrorIs(t, err, ErrThrottled)
	assert.Less(t, time.Since(start), 40*time.Millisecond, "fails at once, without waiting for the deadline")
	assert.Contains(t, err.Error(), "45009")

	require.NoError(t, l.Wait(ctx, corp, "/cgi-bin/kf/sync_msg", PriorityFresh), "another path")
	require.NoError(t, l.Wait(ctx, "wwother", path, PriorityFresh), "another corp")

	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
		}()
	}
	wg.Wait()
	assert.GreaterOrEqual(t, time.Since(start), 280*time.Millisecond, "the waiters went when the pause ended")

	// A cancelled waiter leaves; the driver ends when nothing waits.
	_, _, err = l.Pause(ctx, corp, path)
	require.NoError(t, err)
	cctx, ccancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.Wait(cctx, corp, path, PriorityFresh) }()
	require.Eventually(t, func() bool { return l.queued(corp, path) == 1 }, time.Second, time.Millisecond)
	ccancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	assert.Equal(t, 0, l.queued(corp, path))
	g := l.gate(corp, path)
	require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return !g.driverOn }, time.Second, time.Millisecond,
		"the driver ended, though the pause goes on")
}

// A store that fails is not read as "go": Wait returns its error.
func TestRateLimiterStoreError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	l := testLimiter(t, failingRateStore{boom}, RateCeiling{Calls: 10, Per: time.Second}, time.Second)
	assert.ErrorIs(t, l.Wait(context.Background(), "wwcorp", "/cgi-bin/kf/send_msg", PriorityFresh), boom)
}

type failingRateStore struct{ err error }

func (f failingRateStore) AdmitCalls(context.Context, string, string, int, []RateRule) (int, time.Duration, bool, error) {
	return 0, 0, false, f.err
}

func (f failingRateStore) PauseCalls(context.Context, string, string, time.Duration, time.Duration, time.Duration) (time.Duration, int, error) {
	return 0, 0, f.err
}

// The ceilings become GCRA rules under the margin: for every ceiling, no window of its length can
// hold more than the ceiling.
func TestRateRulesStayUnderTheCeiling(t *testing.T) {
	t.Parallel()
	for _, c := range []RateCeiling{
		{Calls: DefaultCallsPerMinute, Per: time.Minute},
		{Calls: DefaultCallsPerHour, Per: time.Hour},
		{Calls: DefaultIPCallsPerMinute, Per: time.Minute},
		{Calls: 600, Per: time.Minute},
		{Calls: 10, Per: time.Second},
		{Calls: 1, Per: time.Second},
	} {
		for _, m := range []float64{0.01, DefaultRateMargin, 0.2} {
			rules := gcraRules([]RateCeiling{c}, m)
			for p := range numPriorities {
				r := rules[p][0]
				require.GreaterOrEqual(t, r.Tolerance, r.Interval)
				// GCRA admits at most W/Interval + Tolerance/Interval calls in a window W.
				most := float64(c.Per)/float64(r.Interval) + float64(r.Tolerance/r.Interval)
				assert.LessOrEqual(t, int(most), c.Calls, "%+v margin %v priority %d", c, m, p)
				if p == 0 {
					assert.GreaterOrEqual(t, float64(c.Per)/float64(r.Interval), float64(c.Calls)*(1-m)*0.999, "flows at (1-m)")
				}
			}
		}
	}
}

func TestRateLimiterOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []RateLimiterOption{
		WithRateStore(nil),
		WithRateCeilings("send_msg", RateCeiling{Calls: 1, Per: time.Second}),
		WithRateCeilings("", RateCeiling{Calls: 0, Per: time.Second}),
		WithIPRateCeilings(RateCeiling{Calls: 1}),
		WithRateMargin(0),
		WithRateMargin(0.6),
		WithRatePause(0, time.Second, 0),
		WithRatePause(time.Second, time.Millisecond, 0),
	} {
		_, err := NewRateLimiter(o)
		assert.ErrorIs(t, err, ErrInvalidArgument)
	}
	_, err := NewRateLimiter(nil)
	assert.NoError(t, err, "a nil option is ignored")
	_, err = NewClient("corp", "secret", WithRateLimiter(nil))
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

// PriorityContext and SyncMsg without a token rank the client's calls.
func TestClientCallPriorities(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	spy := &spyLimiter{}
	c, err := NewClient(srv.CorpID(), srv.Secret(), WithBaseURL(srv.URL()), WithRateLimiter(spy))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.SyncMsg(ctx, SyncMsgRequest{OpenKfID: srv.OpenKfID()})
	require.NoError(t, err)
	_, err = c.SyncMsg(ctx, SyncMsgRequest{OpenKfID: srv.OpenKfID(), Token: srv.IssueSyncToken(srv.OpenKfID())})
	require.NoError(t, err)
	_, err = c.SyncMsg(PriorityContext(ctx, PriorityRetry), SyncMsgRequest{OpenKfID: srv.OpenKfID(), Token: srv.IssueSyncToken(srv.OpenKfID())})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"/cgi-bin/kf/sync_msg 2", "/cgi-bin/gettoken 0", // the token is fetched after the wait
		"/cgi-bin/kf/sync_msg 0",
		"/cgi-bin/kf/sync_msg 1",
	}, spy.calls())
}

// spyLimiter records the calls it is asked about and lets them all go.
type spyLimiter struct {
	mu  sync.Mutex
	log []string
}

func (s *spyLimiter) Wait(_ context.Context, _, path string, p Priority) error {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf("%s %d", path, p))
	s.mu.Unlock()
	return nil
}

func (s *spyLimiter) Pause(context.Context, string, string) (time.Duration, int, error) {
	return time.Second, 1, nil
}

func (s *spyLimiter) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// A 45009 pauses the path: it is logged at Warn and counted, and the next call with a short deadline
// fails with ErrThrottled without reaching WeCom; after the pause, calls go again.
func TestClientPausesAfter45009(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	var logs lockedLog
	l, err := NewRateLimiter(WithRatePause(300*time.Millisecond, time.Second, time.Second))
	require.NoError(t, err)
	tel := newTelemetry(t)
	c, err := NewClient(srv.CorpID(), srv.Secret(), WithBaseURL(srv.URL()), WithRateLimiter(l), WithLogger(logs.logger()),
		WithClientMeterProvider(tel.mp))
	require.NoError(t, err)
	ctx := context.Background()
	srv.AddText("u1", "hi")
	send := func(ctx context.Context) error {
		_, err := c.SendMsg(ctx, SendMsgRequest{ToUser: "u1", OpenKfID: srv.OpenKfID(), MsgID: fmt.Sprintf("m%d", time.Now().UnixNano()), Content: &Text{Content: "x"}})
		return err
	}
	srv.FailWith(pathSendMsg, 45009, "api freq out of limit")
	err = send(ctx)
	require.ErrorIs(t, err, ErrRateLimited)
	srv.Handle(pathSendMsg, nil)
	assert.Contains(t, logs.String(), "45009")
	assert.Contains(t, logs.String(), "level=WARN")

	var reached int
	cancelObs := srv.Observe(func(r kftest.Record) {
		if r.Path == pathSendMsg {
			reached++
		}
	})
	defer cancelObs()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = send(short)
	cancel()
	require.ErrorIs(t, err, ErrThrottled)
	var re *RequestError
	require.ErrorAs(t, err, &re, "a local failure of the call")
	assert.Zero(t, reached, "nothing reached WeCom during the pause")

	require.NoError(t, send(ctx), "waits for the pause, then goes")
	assert.Equal(t, 1, reached)
	limited, pauses, wait := c.rateCounts()
	assert.EqualValues(t, 1, limited)
	assert.EqualValues(t, 1, pauses)
	assert.Greater(t, wait, 150*time.Millisecond)
	m := tel.collect()
	assert.EqualValues(t, 1, m.sum("wxkf.ratelimit.pause.count", keyPath.String(pathSendMsg)), "the pause, as a metric")
	n, sum := m.histogram("wxkf.ratelimit.wait.duration", keyPath.String(pathSendMsg))
	assert.EqualValues(t, 3, n, "every attempt's wait is recorded")
	assert.Greater(t, sum, 0.15, "the wait through the pause")
}

// lockedLog collects a logger's text output.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lockedLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// In a Channel, a handler's rerun calls at PriorityRetry and a pull with the callback's token at
// PriorityFresh (TestClientCallPriorities: a pull without one goes at PriorityBackground).
func TestChannelRanksRetriesAndTokenlessPulls(t *testing.T) {
	t.Parallel()
	spy := &spyLimiter{}
	e := newEnv(t, WithClientOptions(WithRateLimiter(spy)), WithRetryBackoff(time.Millisecond, 10*time.Millisecond))
	var runs int
	var mu sync.Mutex
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		if n == 1 {
			return Retry(errors.New("not yet"))
		}
		return r.Text(ctx, "answer")
	})
	e.srv.AddText("u1", "hi")
	e.notify()
	e.waitSent("u1", 1)
	e.settle()
	var sends []string
	sawTokenPull := false
	for _, c := range spy.calls() {
		switch c {
		case pathSendMsg + " 0", pathSendMsg + " 1", pathSendMsg + " 2":
			sends = append(sends, c)
		case pathSyncMsg + " 0":
			sawTokenPull = true
		}
	}
	assert.Equal(t, []string{pathSendMsg + " 1"}, sends, "the answer came from the rerun")
	assert.True(t, sawTokenPull, "the callback's pull is fresh")
}

// The call guard runs after the limiter's wait, on every attempt: a guard that refuses (the Replier's
// lost lease) stops the call before anything goes out.
func TestCallGuardRunsAfterTheWait(t *testing.T) {
	t.Parallel()
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	l := testLimiter(t, nil, RateCeiling{Calls: 1000, Per: time.Second}, 200*time.Millisecond)
	c, err := NewClient(srv.CorpID(), srv.Secret(), WithBaseURL(srv.URL()), WithRateLimiter(l))
	require.NoError(t, err)
	ctx := context.Background()
	_, _, err = l.Pause(ctx, srv.CorpID(), pathSendMsg)
	require.NoError(t, err)
	var valid sync.Mutex // held while "the lease" is valid
	lost := false
	guard := func() error {
		valid.Lock()
		defer valid.Unlock()
		if lost {
			return errLeaseLost
		}
		return nil
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // the lease is lost while the send waits for the pause
		valid.Lock()
		lost = true
		valid.Unlock()
	}()
	srv.AddText("u1", "hi")
	_, err = c.SendMsg(withCallGuard(ctx, guard), SendMsgRequest{ToUser: "u1", OpenKfID: srv.OpenKfID(), MsgID: "m1", Content: &Text{Content: "x"}})
	require.ErrorIs(t, err, errLeaseLost)
	assert.True(t, notSent(err))
	assert.Empty(t, srv.Sent())
	assert.Zero(t, srv.Calls(pathSendMsg), "nothing reached WeCom")
}
