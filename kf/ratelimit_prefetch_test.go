package kf

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
)

// countingRateStore counts the AdmitCalls calls to the store it wraps, the calls they asked for and
// those admitted. Being no *memRateStore, it makes the limiter prefetch. While hold is set, each
// AdmitCalls, once answered, waits for a value on it; while holdPause is set, each PauseCalls waits
// for one before it asks.
type countingRateStore struct {
	RateStore
	calls, asked, admitted atomic.Int64
	lastN                  atomic.Int64
	hold, holdPause        chan struct{}
}

func (s *countingRateStore) PauseCalls(ctx context.Context, corpID, path string, min, max, reset time.Duration) (time.Duration, int, error) {
	if s.holdPause != nil {
		<-s.holdPause
	}
	return s.RateStore.PauseCalls(ctx, corpID, path, min, max, reset)
}

func (s *countingRateStore) AdmitCalls(ctx context.Context, corpID, path string, n int, rules []RateRule) (int, time.Duration, bool, error) {
	got, wait, paused, err := s.RateStore.AdmitCalls(ctx, corpID, path, n, rules)
	s.calls.Add(1)
	s.asked.Add(int64(n))
	s.admitted.Add(int64(got))
	s.lastN.Store(int64(n))
	if s.hold != nil {
		<-s.hold
	}
	return got, wait, paused, err
}

// prefetchStores returns the stores the prefetch tests run on: this package's wrapped (so that the
// limiter treats it as remote) and cursor/redis's on a single node.
func prefetchStores(t *testing.T) map[string]func(prefix string) *countingRateStore {
	t.Helper()
	rdb := newRedis(t)
	return map[string]func(string) *countingRateStore{
		"memory": func(string) *countingRateStore { return &countingRateStore{RateStore: newMemRateStore()} },
		"redis": func(p string) *countingRateStore {
			return &countingRateStore{RateStore: redis.New(rdb, redis.WithPrefix(p))}
		},
	}
}

// busy makes the gate of (corp, path) count calls previous-window calls in its previous window, for
// as long as the test runs (its current window starts in an hour), so that it prefetches that many.
func (l *rateLimiter) busy(corp, path string, calls int) *gate {
	g := l.gate(corp, path)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.winStart, g.winCalls, g.lastCalls = time.Now().Add(time.Hour), 0, calls
	return g
}

// creditCounts returns how many credits of each priority the gate holds (expired ones included).
func (g *gate) creditCounts() [numPriorities]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n [numPriorities]int
	for i, c := range g.credits {
		n[i] = c.n
	}
	return n
}

// Only a shared store makes the limiter prefetch: in this process it would save nothing.
func TestRateLimiterPrefetchesOnlyOnSharedStores(t *testing.T) {
	t.Parallel()
	c := RateCeiling{Calls: 1000, Per: time.Second}
	assert.False(t, testLimiter(t, nil, c, time.Second).prefetch, "the default, in-process store")
	assert.False(t, testLimiter(t, newMemRateStore(), c, time.Second).prefetch)
	assert.True(t, testLimiter(t, &countingRateStore{RateStore: newMemRateStore()}, c, time.Second).prefetch)
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	assert.True(t, testLimiter(t, redis.New(rdb), c, time.Second).prefetch)
}

// At a sustained rate under the ceiling, a busy gate fetches calls ahead: far fewer store calls than
// API calls. Over the ceiling, the store still admits no more than the GCRA allows, and no call goes
// that the store did not admit.
func TestRateLimiterPrefetchSavesStoreCalls(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	for name, open := range prefetchStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("steady", func(t *testing.T) {
				t.Parallel()
				store := open("steady:")
				c := RateCeiling{Calls: 2000, Per: time.Second} // a call every 0.53 ms, burst 50
				l := testLimiter(t, store, c, time.Second)
				var made atomic.Int64
				start := time.Now()
				var wg sync.WaitGroup
				for range 4 { // 4 × 250 calls a second, half the ceiling
					wg.Add(1)
					go func() {
						defer wg.Done()
						tick := time.Now()
						for time.Since(start) < time.Second {
							if err := l.Wait(context.Background(), corp, path, PriorityFresh); err != nil {
								t.Error(err)
								return
							}
							made.Add(1)
							tick = tick.Add(4 * time.Millisecond)
							time.Sleep(time.Until(tick))
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				calls, admitted := store.calls.Load(), store.admitted.Load()
				ratio := float64(calls) / float64(made.Load())
				t.Logf("%d API calls, %d store calls (%.3f a call), %d admitted", made.Load(), calls, ratio, admitted)
				assert.Greater(t, made.Load(), int64(200))
				assert.Less(t, ratio, 0.5, "store calls per API call")
				assert.LessOrEqual(t, made.Load(), admitted, "no call goes unadmitted")
				assert.LessOrEqual(t, admitted, gcraBound(l, path, elapsed), "the GCRA bound")
			})
			t.Run("over the ceiling", func(t *testing.T) {
				t.Parallel()
				store := open("over:")
				c := RateCeiling{Calls: 400, Per: time.Second} // a call every 2.6 ms, burst 10
				l := testLimiter(t, store, c, time.Second)
				ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
				defer cancel()
				var made atomic.Int64
				start := time.Now()
				var wg sync.WaitGroup
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for l.Wait(ctx, corp, path, PriorityFresh) == nil {
							made.Add(1)
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				admitted := store.admitted.Load()
				t.Logf("%d API calls, %d store calls, %d admitted in %v", made.Load(), store.calls.Load(), admitted, elapsed)
				assert.Greater(t, made.Load(), int64(150), "the budget is used")
				assert.LessOrEqual(t, made.Load(), admitted, "no call goes unadmitted")
				assert.LessOrEqual(t, admitted, gcraBound(l, path, elapsed), "the GCRA bound")
			})
		})
	}
}

// gcraBound is the most calls l's fresh rules for path admit in d from a fresh state: d/Interval
// and the burst, plus one, for the strictest rule.
func gcraBound(l *rateLimiter, path string, d time.Duration) int64 {
	rules, ok := l.rules[path]
	if !ok {
		rules = l.rules[""]
	}
	bound := int64(-1)
	for _, r := range rules[PriorityFresh] {
		b := int64(d/r.Interval) + int64(r.Tolerance/r.Interval) + 1
		if bound < 0 || b < bound {
			bound = b
		}
	}
	return bound
}

// A gate that sees one call per window or fewer fetches nothing ahead: each call asks for itself
// alone, so replicas that trickle spend none of the corp's budget unused.
func TestRateLimiterTrickleDoesNotPrefetch(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/sync_msg"
	for name, open := range prefetchStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open("trickle:")
			l := testLimiter(t, store, RateCeiling{Calls: 1000, Per: time.Second}, time.Second)
			const calls = 5
			for i := range calls {
				if i > 0 {
					time.Sleep(300 * time.Millisecond)
				}
				require.NoError(t, l.Wait(context.Background(), corp, path, PriorityFresh))
			}
			assert.EqualValues(t, calls, store.calls.Load(), "a store call each")
			assert.EqualValues(t, calls, store.asked.Load(), "for one call each")
			assert.EqualValues(t, calls, store.admitted.Load(), "admitted == calls made")
		})
	}
}

// Credits fetched ahead by fresh calls, admitted under the fresh rules (the whole burst), never
// serve retried or background calls (whose rules allow less); those fetched by background calls
// serve every priority.
func TestRateLimiterPrefetchKeepsPriorities(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	store := &countingRateStore{RateStore: newMemRateStore()}
	l := testLimiter(t, store, RateCeiling{Calls: 10000, Per: time.Second}, time.Second)
	ctx := context.Background()
	g := l.busy(corp, path, 8)

	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
	assert.EqualValues(t, 9, store.lastN.Load(), "the call and 8 ahead")
	assert.Equal(t, [numPriorities]int{8, 0, 0}, g.creditCounts())

	for _, p := range []Priority{PriorityRetry, PriorityBackground} {
		before := store.calls.Load()
		require.NoError(t, l.Wait(ctx, corp, path, p))
		assert.Equal(t, before+1, store.calls.Load(), "priority %d asked the store", p)
		assert.Equal(t, 8, g.creditCounts()[PriorityFresh], "priority %d took no fresh credit", p)
	}

	// Background credits serve a fresh call, before the fresh ones run out; fresh credits serve a
	// fresh call without the store.
	g.mu.Lock()
	g.credits = [numPriorities]rateCredits{{n: 1, exp: time.Now().Add(time.Hour)}, {}, {n: 1, exp: time.Now().Add(time.Hour)}}
	g.mu.Unlock()
	before := store.calls.Load()
	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
	assert.Equal(t, before, store.calls.Load(), "both from credits")
	assert.Equal(t, [numPriorities]int{0, 0, 0}, g.creditCounts())

	// Expired credits are dropped, not used.
	g.mu.Lock()
	g.credits[PriorityBackground] = rateCredits{n: 3, exp: time.Now().Add(-time.Millisecond)}
	g.mu.Unlock()
	require.NoError(t, l.Wait(ctx, corp, path, PriorityBackground))
	assert.Equal(t, before+1, store.calls.Load(), "expired credits serve nothing")
}

// A call served from a credit costs no allocation (not parallel: AllocsPerRun).
func TestRateLimiterPrefetchCreditAllocs(t *testing.T) {
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	l := testLimiter(t, &countingRateStore{RateStore: newMemRateStore()}, RateCeiling{Calls: 10000, Per: time.Second}, time.Second)
	g := l.busy(corp, path, 8)
	g.mu.Lock()
	g.credits[PriorityFresh] = rateCredits{n: 1 << 20, exp: time.Now().Add(time.Hour)}
	g.mu.Unlock()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		if err := l.Wait(ctx, corp, path, PriorityFresh); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "allocations per call served from a credit")
}

// Queued calls are served from credits before the driver asks the store for them.
func TestRateLimiterDriverServesFromCredits(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	hold := make(chan struct{})
	store := &countingRateStore{RateStore: newMemRateStore(), hold: hold}
	l := testLimiter(t, store, RateCeiling{Calls: 10000, Per: time.Second}, time.Second)
	ctx := context.Background()
	l.busy(corp, path, 8)

	first := make(chan error, 1)
	go func() { first <- l.Wait(ctx, corp, path, PriorityFresh) }() // asks for 9, held
	require.Eventually(t, func() bool { return store.calls.Load() == 1 }, time.Second, time.Millisecond)
	errs := make(chan error, 4)
	for i := range 4 {
		go func() { errs <- l.Wait(ctx, corp, path, PriorityFresh) }()
		require.Eventually(t, func() bool { return l.queued(corp, path) == i+1 }, time.Second, time.Millisecond)
	}
	hold <- struct{}{}
	require.NoError(t, <-first)
	for range 4 {
		require.NoError(t, <-errs)
	}
	assert.EqualValues(t, 1, store.calls.Load(), "the queued calls went on the first call's credits")
}

// Pause drops the gate's credits at once, and those a store call under way brings back: no call
// goes out on credits fetched before the 45009.
func TestRateLimiterPauseDropsCredits(t *testing.T) {
	t.Parallel()
	const corp, path = "wwcorp", "/cgi-bin/kf/send_msg"
	hold := make(chan struct{})
	store := &countingRateStore{RateStore: newMemRateStore()}
	l := testLimiter(t, store, RateCeiling{Calls: 10000, Per: time.Second}, 300*time.Millisecond)
	ctx := context.Background()
	g := l.busy(corp, path, 8)
	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
	require.Equal(t, [numPriorities]int{8, 0, 0}, g.creditCounts())

	// A background call asks the store (fresh credits are not for it), and its answer, admitted
	// before the pause, comes after it.
	store.hold = hold
	bg := make(chan error, 1)
	go func() { bg <- l.Wait(ctx, corp, path, PriorityBackground) }()
	require.Eventually(t, func() bool { return store.calls.Load() == 2 }, time.Second, time.Millisecond)
	assert.EqualValues(t, 9, store.lastN.Load())
	_, strike, err := l.Pause(ctx, corp, path)
	require.NoError(t, err)
	assert.Equal(t, 1, strike)
	assert.Equal(t, [numPriorities]int{0, 0, 0}, g.creditCounts(), "dropped at once")
	hold <- struct{}{}
	require.NoError(t, <-bg, "the call in flight goes, as without prefetch")
	store.hold = nil
	assert.Equal(t, [numPriorities]int{0, 0, 0}, g.creditCounts(), "the answer under way brought none")

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.Wait(short, corp, path, PriorityFresh), ErrThrottled, "no call from a credit during the pause")
	start := time.Now()
	require.NoError(t, l.Wait(ctx, corp, path, PriorityFresh))
	assert.Greater(t, time.Since(start), 150*time.Millisecond, "the next call waited for the pause")

	// Credits fetched while the pause is on its way to the store are dropped once it is there.
	const other = "/cgi-bin/kf/sync_msg"
	g = l.busy(corp, other, 8)
	holdPause := make(chan struct{})
	store.holdPause = holdPause
	paused := make(chan error, 1)
	go func() { _, _, err := l.Pause(ctx, corp, other); paused <- err }()
	require.Eventually(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.epoch > 0 }, time.Second, time.Millisecond)
	require.NoError(t, l.Wait(ctx, corp, other, PriorityFresh), "the store has no pause yet")
	require.Equal(t, [numPriorities]int{8, 0, 0}, g.creditCounts())
	holdPause <- struct{}{}
	require.NoError(t, <-paused)
	assert.Equal(t, [numPriorities]int{0, 0, 0}, g.creditCounts(), "dropped once the store has the pause")
}
