package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var prefixes atomic.Int64

// uniquePrefix gives each store its own keys on a shared server.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("test%d:%s:", prefixes.Add(1), t.Name())
}

func TestConformance(t *testing.T) {
	t.Parallel()
	addr, _, _ := redistest.Start(t)
	admin := newClient(t, addr)
	const retention = 2 * time.Second
	cursortest.Run(t, func(t *testing.T) *cursortest.Harness {
		prefix := uniquePrefix(t)
		var open func() *cursortest.Harness
		open = func() *cursortest.Harness {
			s := redis.New(newClient(t, addr), redis.WithPrefix(prefix), redis.WithRetention(retention))
			return &cursortest.Harness{
				Store: s, Locker: s, Dedup: s,
				Retention: retention,
				Advance:   time.Sleep,
				ExpireLease: func(key string) {
					require.NoError(t, admin.Del(context.Background(), prefix+"lease:"+key).Err())
				},
				Reopen: open, // a new client and Store over the same server and prefix
			}
		}
		return open()
	})
}

func TestKeysStayUnderPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	s := redis.New(c, redis.WithPrefix("bot1:"))
	require.NoError(t, s.Save(ctx, "wk", "c"))
	require.NoError(t, s.MarkDone(ctx, "wk", "m"))
	require.NoError(t, s.Set(ctx, "tok", "secret", time.Minute))
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"bot1:cursor:wk", "bot1:done:wk", "bot1:token:tok", "bot1:lease:wk"}, keys)
	require.NoError(t, l.Release(ctx))

	// The default prefix.
	d := redis.New(c)
	require.NoError(t, d.Save(ctx, "wk", "c"))
	n, err := c.Exists(ctx, redis.DefaultPrefix+"cursor:wk").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	// Two prefixes are two independent stores.
	other := redis.New(c, redis.WithPrefix("bot2:"))
	got, err := other.Load(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestDedupSetIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	const retention = time.Second
	s := redis.New(c, redis.WithPrefix("b:"), redis.WithRetention(retention))
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("old-%d", i)
	}
	require.NoError(t, s.MarkDone(ctx, "wk", ids...))
	pttl, err := c.PTTL(ctx, "b:done:wk").Result()
	require.NoError(t, err)
	require.Greater(t, pttl, time.Duration(0), "the set expires when the account goes idle")
	require.LessOrEqual(t, pttl, retention)

	time.Sleep(retention + 100*time.Millisecond)
	require.NoError(t, s.MarkDone(ctx, "wk", "new"))
	n, err := c.ZCard(ctx, "b:done:wk").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "marks older than the retention are trimmed")

	time.Sleep(retention + 100*time.Millisecond)
	exists, err := c.Exists(ctx, "b:done:wk").Result()
	require.NoError(t, err)
	require.Zero(t, exists, "an idle account leaves nothing behind")
}

// Batches above one script call are pipelined; after SCRIPT FLUSH (or a restart) the scripts are reloaded.
func TestDedupLargeBatchAndScriptFlush(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	s := redis.New(c)
	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	for round := range 2 {
		require.NoError(t, c.ScriptFlush(ctx).Err())
		require.NoError(t, s.MarkDone(ctx, "wk", ids[:2000]...), "round %d", round)
		require.NoError(t, c.ScriptFlush(ctx).Err())
		got, err := s.Done(ctx, "wk", ids...)
		require.NoError(t, err, "round %d", round)
		require.Len(t, got, len(ids))
		for i, ok := range got {
			require.Equal(t, i < 2000, ok, "index %d", i)
		}
	}
}

func TestTokenStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	s := redis.New(c, redis.WithPrefix("t:"))

	v, ttl, err := s.Get(ctx, "corp1")
	require.NoError(t, err)
	require.Empty(t, v)
	require.Zero(t, ttl, "a miss is (\"\", 0, nil)")

	require.NoError(t, s.Set(ctx, "corp1", "ACCESS_TOKEN_1", 7200*time.Second))
	v, ttl, err = s.Get(ctx, "corp1")
	require.NoError(t, err)
	require.Equal(t, "ACCESS_TOKEN_1", v)
	require.Greater(t, ttl, 7190*time.Second)
	require.LessOrEqual(t, ttl, 7200*time.Second)

	require.NoError(t, s.Set(ctx, "corp1", "ACCESS_TOKEN_2", 300*time.Millisecond))
	v, ttl, err = s.Get(ctx, "corp1")
	require.NoError(t, err)
	require.Equal(t, "ACCESS_TOKEN_2", v)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, 300*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	v, ttl, err = s.Get(ctx, "corp1")
	require.NoError(t, err)
	require.Empty(t, v, "expired")
	require.Zero(t, ttl)

	require.NoError(t, c.Set(ctx, "t:token:persistent", "v", 0).Err())
	v, ttl, err = s.Get(ctx, "persistent")
	require.NoError(t, err)
	require.Equal(t, "v", v)
	require.Zero(t, ttl, "no expiry reads as ttl 0")

	require.ErrorIs(t, s.Set(ctx, "corp1", "x", 0), cursor.ErrInvalidArgument)
	require.ErrorIs(t, s.Set(ctx, "", "x", time.Minute), cursor.ErrInvalidArgument)
	_, _, err = s.Get(ctx, "")
	require.ErrorIs(t, err, cursor.ErrInvalidArgument)
}

// The store implements kf.TokenStore structurally; this is that interface, copied from the shared contract.
type tokenStore interface {
	Get(ctx context.Context, key string) (value string, ttl time.Duration, err error)
	Set(ctx context.Context, key, value string, ttl time.Duration) error
}

var _ tokenStore = (*redis.Store)(nil)

func TestNilClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := redis.New(nil)
	_, err := s.Load(ctx, "wk")
	require.Error(t, err)
	require.Error(t, s.Save(ctx, "wk", "c"))
	require.Error(t, s.MarkDone(ctx, "wk", "m"))
	_, err = s.Done(ctx, "wk", "m")
	require.Error(t, err)
	_, err = s.Lock(ctx, "wk", time.Second)
	require.Error(t, err)
	_, _, err = s.Get(ctx, "k")
	require.Error(t, err)
	require.Error(t, s.Set(ctx, "k", "v", time.Second))
}

// Redis stops mid-run: every call returns an error (never a "none" answer), a held lease reports its loss, nothing
// panics or leaks; when Redis is back, work resumes on the same Store.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, stop, restart := redistest.Start(t)
	c := goredis.NewClient(&goredis.Options{
		Addr:         addr,
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	s := redis.New(c, redis.WithPrefix("outage:"))

	require.NoError(t, s.Save(ctx, "wk", "before"))
	require.NoError(t, s.MarkDone(ctx, "wk", "m1"))
	const ttl = 900 * time.Millisecond
	lease, err := s.Lock(ctx, "wk", ttl)
	require.NoError(t, err)

	stop()
	downAt := time.Now()

	got, err := s.Load(ctx, "wk")
	require.Error(t, err, "an outage is an error, not \"no cursor\"")
	require.Empty(t, got)
	require.Contains(t, err.Error(), "wk")
	require.Error(t, s.Save(ctx, "wk", "during"))
	require.Error(t, s.MarkDone(ctx, "wk", "m2"))
	done, err := s.Done(ctx, "wk", "m1")
	require.Error(t, err)
	require.Nil(t, done)
	_, _, err = s.Get(ctx, "tok")
	require.Error(t, err)
	require.Error(t, s.Set(ctx, "tok", "v", time.Minute))
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	l2, err := s.Lock(lctx, "other", ttl)
	cancel()
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "an unreachable Redis is reported, not waited out")
	require.Nil(t, l2)

	select {
	case <-lease.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not learn that its lease could not be renewed")
	}
	require.ErrorIs(t, lease.Err(), cursor.ErrLeaseLost)
	require.Less(t, time.Since(downAt), ttl+5*time.Second)
	require.ErrorIs(t, lease.Release(ctx), cursor.ErrLeaseLost)

	restart() // an empty server on the same address (no persistence in tests)

	require.Eventually(t, func() bool { return s.Save(ctx, "wk", "after") == nil }, 10*time.Second, 50*time.Millisecond,
		"work resumes when Redis is back")
	got, err = s.Load(ctx, "wk")
	require.NoError(t, err)
	require.Equal(t, "after", got)
	require.NoError(t, s.MarkDone(ctx, "wk", "m3"))
	done, err = s.Done(ctx, "wk", "m3", "m4")
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, done)
	require.NoError(t, s.Set(ctx, "tok", "v", time.Minute))
	l3, err := s.Lock(ctx, "wk", ttl)
	require.NoError(t, err)
	require.NoError(t, l3.Release(ctx))
}

// A lease outlives a short stall: a renewal delayed by less than the ttl (here the server pauses all clients)
// does not lose the lease.
func TestLeaseSurvivesShortBlip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	s := redis.New(c, redis.WithPrefix("blip:"))
	lease, err := s.Lock(ctx, "wk", 3*time.Second)
	require.NoError(t, err)
	// Make renewals fail for a while without losing the key: pause the server's command processing.
	require.NoError(t, c.Do(ctx, "CLIENT", "PAUSE", "1200", "ALL").Err())
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, lease.Err(), "a renewal delayed less than the ttl does not lose the lease")
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, lease.Err())
	require.NoError(t, lease.Release(ctx))
	n, err := c.Exists(ctx, "blip:lease:wk").Result()
	require.NoError(t, err)
	require.Zero(t, n, "Release deletes the key")
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := redis.New(newClient(t, "127.0.0.1:1")) // never dialled: arguments are checked first
	long := strings.Repeat("k", cursor.MaxKeyLen+1)
	require.ErrorIs(t, s.Save(ctx, long, "c"), cursor.ErrInvalidArgument)
	require.ErrorIs(t, s.MarkDone(ctx, "wk", "ok", ""), cursor.ErrInvalidArgument)
	_, err := s.Lock(ctx, "wk", 0)
	require.ErrorIs(t, err, cursor.ErrInvalidArgument)
}

// roundTrips counts what the client sends: one per command, one per pipeline.
type roundTrips struct {
	n    atomic.Int64
	cmds atomic.Int64
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		h.cmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Checking a full sync_msg page (1000 msgids) costs one round trip; larger batches one pipeline.
func TestDedupBatchIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	s := redis.New(c)
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	// Warm up: connection handshake and script loading are not part of the steady state.
	require.NoError(t, s.MarkDone(ctx, "wk", ids[:1]...))
	_, err := s.Done(ctx, "wk", ids[:1]...)
	require.NoError(t, err)
	_, err = s.Done(ctx, "wk", ids...)
	require.NoError(t, err)

	h := &roundTrips{}
	c.AddHook(h)
	for _, n := range []int{1, 1000, 3000} {
		h.n.Store(0)
		h.cmds.Store(0)
		got, err := s.Done(ctx, "wk", ids[:n]...)
		require.NoError(t, err)
		require.Len(t, got, n)
		require.Equal(t, int64(1), h.n.Load(), "Done of %d msgids", n)
		require.Equal(t, int64((n+999)/1000), h.cmds.Load(), "one script call per 1000 msgids")

		h.n.Store(0)
		require.NoError(t, s.MarkDone(ctx, "wk", ids[:n]...))
		require.Equal(t, int64(1), h.n.Load(), "MarkDone of %d msgids", n)
	}
}
