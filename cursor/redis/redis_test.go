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

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// The conformance suite, with real time (the retention is short) and a renewal staller for Lease/ErrAtDeadline:
// the renewals are held back in the client, so that the lease's deadline passes while the renewer is stuck
// and only Err's own clock can report the loss.
func testConformance(t *testing.T, b *backend) {
	const retention = 2 * time.Second
	cursortest.Run(t, func(t *testing.T) *cursortest.Harness {
		prefix := uniquePrefix(t)
		var open func() *cursortest.Harness
		open = func() *cursortest.Harness {
			c := b.client(t)
			staller := &renewStaller{}
			c.AddHook(staller)
			s := redis.New(c, redis.WithPrefix(prefix), redis.WithRetention(retention))
			return &cursortest.Harness{
				State:     s,
				Retention: retention,
				Advance:   time.Sleep,
				ExpireLease: func(key string) {
					require.NoError(t, b.admin.Del(context.Background(), prefix+"{"+key+"}:lease").Err())
				},
				Reopen:        open, // a new client and Store over the same server and prefix
				StallRenewals: staller.stall,
			}
		}
		return open()
	})
}

// Every key is under the prefix, and an account's keys share one hash tag, so one Cluster slot.
func testKeyLayout(t *testing.T, b *backend) {
	ctx := context.Background()
	p := uniquePrefix(t)
	s := redis.New(b.client(t), redis.WithPrefix(p))
	require.NoError(t, s.Save(ctx, "wk", "c"))
	require.NoError(t, s.MarkDone(ctx, "wk", "m"))
	require.NoError(t, s.Set(ctx, "tok", "secret", time.Minute))
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.SetMeta(ctx, "history_before", "1"))
	require.NoError(t, l.PutReply(ctx, "m2", []byte("r")))
	want := []string{"{wk}:cursor", "{wk}:done", "{wk}:lease", "{wk}:fence", "{wk}:meta", "{wk}:reply",
		"accounts", "token:tok"}
	for i := range want {
		want[i] = p + want[i]
	}
	require.ElementsMatch(t, want, b.keys(t, p))
	require.NoError(t, l.Release(ctx))

	if c, ok := b.admin.(*goredis.ClusterClient); ok {
		slot, err := c.ClusterKeySlot(ctx, p+"{wk}:cursor").Result()
		require.NoError(t, err)
		for _, k := range want[:6] { // the account's keys
			got, err := c.ClusterKeySlot(ctx, k).Result()
			require.NoError(t, err)
			require.Equal(t, slot, got, k)
		}
	}

	// Two prefixes are two independent stores.
	other := redis.New(b.client(t), redis.WithPrefix(uniquePrefix(t)))
	got, err := other.Load(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestDefaultPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, _, _ := redistest.Start(t)
	c := newClient(t, addr)
	require.NoError(t, redis.New(c).Save(ctx, "wk", "c"))
	n, err := c.Exists(ctx, redis.DefaultPrefix+"{wk}:cursor").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// boundedRetention is the retention of newBoundedStore.
const boundedRetention = time.Second

// newBoundedStore returns a client, a fresh prefix and a Store with a retention of a second on them.
func newBoundedStore(t *testing.T, b *backend) (goredis.UniversalClient, string, *redis.Store) {
	c, p := b.client(t), uniquePrefix(t)
	return c, p, redis.New(c, redis.WithPrefix(p), redis.WithRetention(boundedRetention))
}

// requireExpiry checks that key expires within a retention of d, plus the slack of a quarter of it
// (twice the maintenance interval of an eighth of a short retention) that keeps the marks made between
// two maintenances alive a full retention.
func requireExpiry(t *testing.T, c goredis.UniversalClient, key string, d time.Duration) {
	t.Helper()
	d += d / 4
	pttl, err := c.PTTL(context.Background(), key).Result()
	require.NoError(t, err)
	require.Greater(t, pttl, time.Duration(0), "%s expires when the account goes idle", key)
	require.LessOrEqual(t, pttl, d, key)
}

func testDedupSetIsBounded(t *testing.T, b *backend) {
	ctx := context.Background()
	c, p, s := newBoundedStore(t, b)
	const retention = boundedRetention
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("old-%d", i)
	}
	require.NoError(t, s.MarkDone(ctx, "wk", ids...))
	key := p + "{wk}:done"
	requireExpiry(t, c, key, retention)

	time.Sleep(retention + retention/4 + 100*time.Millisecond)
	require.NoError(t, s.MarkDone(ctx, "wk", "new"))
	n, err := c.ZCard(ctx, key).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "marks older than the retention are trimmed")

	time.Sleep(retention + retention/4 + 100*time.Millisecond)
	exists, err := c.Exists(ctx, key).Result()
	require.NoError(t, err)
	require.Zero(t, exists, "an idle account leaves nothing behind")
}

// Reply records are deleted by MarkDone, not returned by Lookup once older than the retention, swept by
// MarkDone when many have piled up, and expire with an idle account.
func testReplyRecordsBounded(t *testing.T, b *backend) {
	ctx := context.Background()
	c, p, s := newBoundedStore(t, b)
	const retention = boundedRetention
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Release(ctx)) }()
	for i := range 50 {
		require.NoError(t, l.PutReply(ctx, fmt.Sprintf("old-%d", i), []byte("r")))
	}
	require.NoError(t, l.MarkDone(ctx, "old-0", "old-1"))
	n, err := c.HLen(ctx, p+"{wk}:reply").Result()
	require.NoError(t, err)
	require.Equal(t, int64(48), n, "MarkDone deletes the records of its msgids")
	requireExpiry(t, c, p+"{wk}:reply", retention)

	time.Sleep(retention + retention/4 + 100*time.Millisecond)
	exists, err := c.Exists(ctx, p+"{wk}:reply").Result()
	require.NoError(t, err)
	require.Zero(t, exists, "an idle account leaves no records behind")

	require.NoError(t, l.PutReply(ctx, "stale", []byte("r")))
	time.Sleep(retention + retention/4 + 100*time.Millisecond)
	st, err := s.Lookup(ctx, "wk", "stale")
	require.NoError(t, err)
	require.Nil(t, st[0].Reply, "a record older than the retention is not returned")

	const many = 4200 // past the sweep threshold
	pipe := c.Pipeline()
	for i := range many {
		pipe.HSet(ctx, p+"{wk}:reply", fmt.Sprintf("swept-%d", i), "1:r") // stamped long ago
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, l.PutReply(ctx, "fresh", []byte("r")))
	require.NoError(t, l.MarkDone(ctx, "other"))
	n, err = c.HLen(ctx, p+"{wk}:reply").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "MarkDone sweeps the expired records once they pile up")
}

// Batches above one script call are pipelined; after SCRIPT FLUSH (or a restart) the scripts are reloaded.
func testDedupLargeBatchAndScriptFlush(t *testing.T, b *backend) {
	ctx := context.Background()
	b = b.private(t) // SCRIPT FLUSH would change the command counts of the tests beside it
	s := redis.New(b.client(t), redis.WithPrefix(uniquePrefix(t)))
	flush := func() {
		require.NoError(t, b.eachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			return c.ScriptFlush(ctx).Err()
		}))
	}
	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	for round := range 2 {
		flush()
		require.NoError(t, s.MarkDone(ctx, "wk", ids[:2000]...), "round %d", round)
		flush()
		got, err := s.Done(ctx, "wk", ids...)
		require.NoError(t, err, "round %d", round)
		require.Len(t, got, len(ids))
		for i, ok := range got {
			require.Equal(t, i < 2000, ok, "index %d", i)
		}
		flush()
		l, err := s.Lock(ctx, "wkLease", time.Minute)
		require.NoError(t, err, "round %d", round)
		flush()
		require.NoError(t, l.MarkDone(ctx, ids...), "round %d", round)
		require.NoError(t, l.Release(ctx))
		got, err = s.Done(ctx, "wkLease", ids...)
		require.NoError(t, err, "round %d", round)
		require.NotContains(t, got, false, "round %d", round)
	}
}

func testTokenStore(t *testing.T, b *backend) {
	ctx := context.Background()
	c := b.client(t)
	p := uniquePrefix(t)
	s := redis.New(c, redis.WithPrefix(p))

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

	require.NoError(t, c.Set(ctx, p+"token:persistent", "v", 0).Err())
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

// A nil client, and an invalid option, are reported by every method as an invalid argument.
func TestInvalidStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range map[string]*redis.Store{
		"nil client":          redis.New(nil),
		"prefix with a brace": redis.New(newClient(t, "127.0.0.1:1"), redis.WithPrefix("a{b}:")),
		"nil option before":   redis.New(nil, nil, redis.WithPrefix("p:")),
		"retention below 1ms": redis.New(newClient(t, "127.0.0.1:1"), redis.WithRetention(0)),
		"nil logger":          redis.New(newClient(t, "127.0.0.1:1"), redis.WithLogger(nil)),
	} {
		_, err := s.Load(ctx, "wk")
		errs := map[string]error{
			"Load":     err,
			"Save":     s.Save(ctx, "wk", "c"),
			"MarkDone": s.MarkDone(ctx, "wk", "m"),
			"Set":      s.Set(ctx, "k", "v", time.Second),
		}
		_, errs["Done"] = s.Done(ctx, "wk", "m")
		_, errs["Lookup"] = s.Lookup(ctx, "wk", "m")
		_, errs["LoadMeta"] = s.LoadMeta(ctx, "wk", "n")
		_, errs["Accounts"] = s.Accounts(ctx)
		_, errs["Lock"] = s.Lock(ctx, "wk", time.Second)
		_, _, errs["Get"] = s.Get(ctx, "k")
		for method, err := range errs {
			require.ErrorIs(t, err, cursor.ErrInvalidArgument, "%s: %s", name, method)
		}
	}
	// Nil options are ignored.
	require.NotPanics(t, func() { redis.New(newClient(t, "127.0.0.1:1"), nil, nil) })
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
	require.NoError(t, lease.Save(ctx, "before"))
	lost := make(chan time.Duration, 1)

	stop()
	downAt := time.Now()
	go func() {
		<-lease.Done()
		lost <- time.Since(downAt)
	}()

	got, err := s.Load(ctx, "wk")
	require.Error(t, err, "an outage is an error, not \"no cursor\"")
	require.Empty(t, got)
	require.Contains(t, err.Error(), "wk")
	require.Error(t, s.Save(ctx, "wk", "during"))
	require.Error(t, s.MarkDone(ctx, "wk", "m2"))
	done, err := s.Done(ctx, "wk", "m1")
	require.Error(t, err)
	require.Nil(t, done)
	st, err := s.Lookup(ctx, "wk", "m1")
	require.Error(t, err)
	require.Nil(t, st)
	meta, err := s.LoadMeta(ctx, "wk", "history_before")
	require.Error(t, err)
	require.Empty(t, meta)
	accounts, err := s.Accounts(ctx)
	require.Error(t, err)
	require.Nil(t, accounts)
	for name, err := range map[string]error{
		"Save":     lease.Save(ctx, "during"),
		"SetMeta":  lease.SetMeta(ctx, "n", "v"),
		"MarkDone": lease.MarkDone(ctx, "m2"),
		"PutReply": lease.PutReply(ctx, "m2", []byte("r")),
	} {
		require.Error(t, err, name)
	}
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
	case after := <-lost:
		require.Less(t, after, ttl+5*time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("the holder did not learn that its lease could not be renewed")
	}
	require.ErrorIs(t, lease.Err(), cursor.ErrLeaseLost)
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
	require.Equal(t, uint64(1), l3.Token(), "a Redis that lost its data counts tokens from 1 again")
	require.NoError(t, l3.Save(ctx, "after"))
	require.NoError(t, l3.Release(ctx))
}

// A lease outlives a short stall: a renewal delayed by less than the ttl (here the server, or the Cluster master
// of the account's slot, pauses all clients) does not lose the lease.
func testLeaseSurvivesShortBlip(t *testing.T, b *backend) {
	ctx := context.Background()
	b = b.private(t) // CLIENT PAUSE would stall the tests beside it
	s := redis.New(b.client(t), redis.WithPrefix("blip:"))
	lease, err := s.Lock(ctx, "wk", 3*time.Second)
	require.NoError(t, err)
	node := goredis.Cmdable(b.admin)
	if c, ok := b.admin.(*goredis.ClusterClient); ok {
		node, err = c.MasterForKey(ctx, "blip:{wk}:lease")
		require.NoError(t, err)
	}
	// Make renewals fail for a while without losing the key: pause the server's command processing.
	require.NoError(t, node.ClientPause(ctx, 1200*time.Millisecond).Err())
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, lease.Err(), "a renewal delayed less than the ttl does not lose the lease")
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, lease.Err())
	require.NoError(t, lease.Save(ctx, "still held"))
	require.NoError(t, lease.Release(ctx))
	n, err := b.admin.Exists(ctx, "blip:{wk}:lease").Result()
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
	// A brace in an account would change the hash tag, and so the Cluster slot, of its keys.
	for _, key := range []string{"wk{x}", "{wk", "wk}"} {
		require.ErrorIs(t, s.Save(ctx, key, "c"), cursor.ErrInvalidArgument, key)
		_, err := s.Load(ctx, key)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, key)
		_, err = s.Lookup(ctx, key, "m")
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, key)
		_, err = s.LoadMeta(ctx, key, "n")
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, key)
		_, err = s.Lock(ctx, key, time.Second)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, key)
	}
}

// roundTrips counts what the client sends: one per command, one per pipeline.
type roundTrips struct {
	n    atomic.Int64
	cmds atomic.Int64
	sadd atomic.Int64
}

func (h *roundTrips) reset() {
	h.n.Store(0)
	h.cmds.Store(0)
	h.sadd.Store(0)
}

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		h.cmds.Add(1)
		if cmd.Name() == "sadd" {
			h.sadd.Add(1)
		}
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
func testBatchIsOneRoundTrip(t *testing.T, b *backend) {
	ctx := context.Background()
	c := b.client(t)
	s := redis.New(c, redis.WithPrefix(uniquePrefix(t)))
	ids := make([]string, 3000)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Release(ctx)) }()
	// Warm up: connection handshake, script loading and the account's one-time migration check are not part
	// of the steady state.
	require.NoError(t, s.MarkDone(ctx, "wk", ids[:1]...))
	require.NoError(t, l.MarkDone(ctx, ids[:1]...))
	require.NoError(t, l.PutReply(ctx, ids[1], []byte("r")))
	require.NoError(t, l.Save(ctx, "c"))
	require.NoError(t, l.SetMeta(ctx, "n", "v"))
	_, err = s.Lookup(ctx, "wk", ids...)
	require.NoError(t, err)

	h := &roundTrips{}
	c.AddHook(h)
	for _, n := range []int{1, 1000, 3000} {
		h.reset()
		got, err := s.Lookup(ctx, "wk", ids[:n]...)
		require.NoError(t, err)
		require.Len(t, got, n)
		require.Equal(t, int64(1), h.n.Load(), "Lookup of %d msgids", n)
		require.Equal(t, int64((n+999)/1000), h.cmds.Load(), "one script call per 1000 msgids")

		h.reset()
		_, err = s.Done(ctx, "wk", ids[:n]...)
		require.NoError(t, err)
		require.Equal(t, int64(1), h.n.Load(), "Done of %d msgids", n)

		h.reset()
		require.NoError(t, s.MarkDone(ctx, "wk", ids[:n]...))
		require.Equal(t, int64(1), h.n.Load(), "MarkDone of %d msgids", n)

		h.reset()
		require.NoError(t, l.MarkDone(ctx, ids[:n]...))
		require.Equal(t, int64(1), h.n.Load(), "fenced MarkDone of %d msgids", n)
	}
	for name, write := range map[string]func() error{
		"Save":     func() error { return l.Save(ctx, "c") },
		"SetMeta":  func() error { return l.SetMeta(ctx, "n", "v") },
		"PutReply": func() error { return l.PutReply(ctx, "m", []byte("r")) },
	} {
		h.reset()
		require.NoError(t, write())
		require.Equal(t, int64(1), h.cmds.Load(), "a fenced %s is one command", name)
	}
}

// A holding adds its key to the account registry before its first write, unless its Store did so in the
// last 10 s; later writes cost one command.
func testRegisteredOncePerLease(t *testing.T, b *backend) {
	ctx := context.Background()
	c := b.client(t)
	p := uniquePrefix(t)
	h := &roundTrips{}
	c.AddHook(h)
	for _, s := range []*redis.Store{redis.New(c, redis.WithPrefix(p)), redis.New(c, redis.WithPrefix(p))} {
		for round := range 3 {
			l, err := s.Lock(ctx, "wk", time.Minute)
			require.NoError(t, err)
			h.reset()
			require.NoError(t, l.MarkDone(ctx)) // writes nothing: no registration
			require.Zero(t, h.cmds.Load())
			require.NoError(t, l.PutReply(ctx, "m1", []byte("r")))
			require.NoError(t, l.Save(ctx, "c1"))
			require.NoError(t, l.MarkDone(ctx, "m1"))
			require.NoError(t, l.SetMeta(ctx, "n", "v"))
			if round == 0 {
				require.Equal(t, int64(1), h.sadd.Load(), "one SADD for the Store's first holding")
			} else {
				require.Zero(t, h.sadd.Load(), "no SADD for a holding 10 s after the Store's last")
				require.Equal(t, int64(4), h.cmds.Load(), "one script per write")
			}
			require.NoError(t, l.Release(ctx))
		}
	}
	members, err := b.admin.SMembers(ctx, p+"accounts").Result()
	require.NoError(t, err)
	require.Equal(t, []string{"wk"}, members)
}

// The server refuses a write of a holding that no longer has the key, even when the holder has not noticed
// yet (its renewals are held back and its deadline is far): the write ends the lease and changes nothing.
func testFencedWriteRefusedByServer(t *testing.T, b *backend) {
	ctx := context.Background()
	p := uniquePrefix(t)
	c := b.client(t)
	staller := &renewStaller{}
	c.AddHook(staller)
	s := redis.New(c, redis.WithPrefix(p))
	type write struct {
		name string
		fn   func(l cursor.Lease) error
	}
	for _, w := range []write{
		{"Save", func(l cursor.Lease) error { return l.Save(ctx, "stale") }},
		{"SetMeta", func(l cursor.Lease) error { return l.SetMeta(ctx, "history_before", "stale") }},
		{"MarkDone", func(l cursor.Lease) error { return l.MarkDone(ctx, "m-new") }},
		{"MarkDone of 2500", func(l cursor.Lease) error {
			ids := make([]string, 2500)
			for i := range ids {
				ids[i] = fmt.Sprintf("m-new-%d", i)
			}
			return l.MarkDone(ctx, ids...)
		}},
		{"PutReply", func(l cursor.Lease) error { return l.PutReply(ctx, "m-new", []byte("stale")) }},
	} {
		old, err := s.Lock(ctx, "wk", time.Minute)
		require.NoError(t, err)
		resume := staller.stall()
		require.NoError(t, b.admin.Del(ctx, p+"{wk}:lease").Err()) // the key expired while its holder was paused
		cur, err := s.Lock(ctx, "wk", time.Minute)
		require.NoError(t, err)
		require.NoError(t, cur.Save(ctx, "new"))
		require.NoError(t, cur.PutReply(ctx, "m-new", []byte("new")))

		require.NoError(t, old.Err(), "%s: the old holder has not noticed", w.name)
		require.ErrorIs(t, w.fn(old), cursor.ErrLeaseLost, w.name)
		select {
		case <-old.Done():
		default:
			t.Fatalf("%s: a refused write ends the lease", w.name)
		}
		require.ErrorIs(t, old.Err(), cursor.ErrLeaseLost, w.name)
		resume()

		got, err := s.Load(ctx, "wk")
		require.NoError(t, err)
		require.Equal(t, "new", got, w.name)
		meta, err := s.LoadMeta(ctx, "wk", "history_before")
		require.NoError(t, err)
		require.Empty(t, meta, w.name)
		st, err := s.Lookup(ctx, "wk", "m-new", "m-new-0", "m-new-2499")
		require.NoError(t, err)
		require.Equal(t, []cursor.Status{{Reply: []byte("new")}, {}, {}}, st, w.name)
		require.NoError(t, cur.Err(), w.name)
		require.NoError(t, cur.Release(ctx), w.name)
		require.ErrorIs(t, old.Release(ctx), cursor.ErrLeaseLost, w.name)
	}
}

// Keys written by earlier versions (<prefix>cursor:<open_kfid>, <prefix>done:<open_kfid>, and kf's
// "#wxkf_history_before" cursor) are listed by Accounts before any migration, and moved into the current
// layout the first time a Store reads the account; a value already in the current layout wins.
func testLegacyMigration(t *testing.T, b *backend) {
	ctx := context.Background()
	p := uniquePrefix(t)
	a := b.admin
	now, err := a.Time(ctx).Result()
	require.NoError(t, err)
	ms := func(d time.Duration) float64 { return float64(now.Add(d).UnixMilli()) }
	require.NoError(t, a.Set(ctx, p+"cursor:wkOld", "old-cursor", 0).Err())
	require.NoError(t, a.Set(ctx, p+"cursor:wkOld#wxkf_history_before", "1741944413", 0).Err())
	require.NoError(t, a.ZAdd(ctx, p+"done:wkOld",
		goredis.Z{Score: ms(-time.Hour), Member: "m1"},
		goredis.Z{Score: ms(-time.Minute), Member: "m2"},
		goredis.Z{Score: ms(-200 * time.Hour), Member: "expired"}).Err())
	require.NoError(t, a.Set(ctx, p+"cursor:wkBoth", "legacy", 0).Err())
	require.NoError(t, a.Set(ctx, p+"cursor:wkUntouched", "u", 0).Err())
	require.NoError(t, a.Set(ctx, p+"cursor:wkMetaOnly#wxkf_history_before", "1", 0).Err())

	s := redis.New(b.client(t), redis.WithPrefix(p))
	// A holder of wkBoth writes the current layout before anything reads the account.
	l, err := s.Lock(ctx, "wkBoth", time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.Save(ctx, "current"))
	require.NoError(t, l.MarkDone(ctx, "m2"))
	require.NoError(t, l.Release(ctx))

	accounts, err := s.Accounts(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"wkOld", "wkBoth", "wkUntouched", "wkMetaOnly"}, accounts,
		"accounts known only from legacy keys are listed (SCAN on every master)")

	got, err := s.Load(ctx, "wkOld")
	require.NoError(t, err)
	require.Equal(t, "old-cursor", got)
	meta, err := s.LoadMeta(ctx, "wkOld", "history_before")
	require.NoError(t, err)
	require.Equal(t, "1741944413", meta)
	done, err := s.Done(ctx, "wkOld", "m1", "m2", "expired", "m3")
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false, false}, done)
	got, err = s.Load(ctx, "wkBoth")
	require.NoError(t, err)
	require.Equal(t, "current", got, "the current layout wins")

	// The legacy keys of the accounts read are gone; the others stay until read.
	for _, k := range []string{p + "cursor:wkOld", p + "cursor:wkOld#wxkf_history_before", p + "done:wkOld", p + "cursor:wkBoth"} {
		n, err := a.Exists(ctx, k).Result()
		require.NoError(t, err)
		require.Zero(t, n, k)
	}
	n, err := a.Exists(ctx, p+"cursor:wkUntouched").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	score, err := a.ZScore(ctx, p+"{wkOld}:done", "m2").Result()
	require.NoError(t, err)
	require.Equal(t, ms(-time.Minute), score, "a mark keeps its time")

	// A new Store (another replica, a restart) reads the migrated keys.
	s2 := redis.New(b.client(t), redis.WithPrefix(p))
	got, err = s2.Load(ctx, "wkOld")
	require.NoError(t, err)
	require.Equal(t, "old-cursor", got)
	meta, err = s2.LoadMeta(ctx, "wkMetaOnly", "history_before")
	require.NoError(t, err)
	require.Equal(t, "1", meta)
	accounts, err = s2.Accounts(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"wkOld", "wkBoth", "wkUntouched", "wkMetaOnly"}, accounts, "still each once")
}
