package kf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

// newRedis starts a Redis server for the test and returns a client of it; both end with the test.
func newRedis(t testing.TB) *goredis.Client {
	t.Helper()
	addr, _, _ := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Two replicas on one Redis, callbacks spread over them at random (and sometimes to both): every
// customer message is answered exactly once, and each customer's replies keep their order.
func TestTwoReplicasExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)

	replica := func() *env {
		e := &env{t: t, srv: srv, dir: t.TempDir()}
		e.start(WithStores(redis.New(rdb, redis.WithPrefix("replicas:"))), WithLeaseTTL(2*time.Second))
		e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // let the replicas interleave
			return r.Text(ctx, m.Text.Content)
		})
		return e
	}
	reps := []*env{replica(), replica()}
	const customers, each = 8, 4
	for i := 0; i < each; i++ {
		for c := 0; c < customers; c++ {
			srv.AddText(fmt.Sprintf("c%d", c), fmt.Sprintf("c%d-%d", c, i))
			ctx := context.Background()
			switch rand.IntN(3) {
			case 0, 1:
				require.NoError(t, srv.Notify(ctx, reps[rand.IntN(2)].url, srv.OpenKfID()))
			case 2: // WeCom retried on the other replica too
				require.NoError(t, srv.Notify(ctx, reps[0].url, srv.OpenKfID()))
				require.NoError(t, srv.Notify(ctx, reps[1].url, srv.OpenKfID()))
			}
		}
		time.Sleep(40 * time.Millisecond) // a new burst: the lease may now go to either replica
	}
	for c := 0; c < customers; c++ {
		reps[0].waitSent(fmt.Sprintf("c%d", c), each)
	}
	for _, e := range reps {
		e.settle()
	}
	time.Sleep(100 * time.Millisecond)
	seen := map[string]bool{}
	for c := 0; c < customers; c++ {
		sent := srv.SentTo(srv.OpenKfID(), fmt.Sprintf("c%d", c))
		require.Len(t, sent, each, "exactly once")
		for i, s := range sent {
			assert.Equal(t, fmt.Sprintf("c%d-%d", c, i), s.Text, "in order")
			assert.False(t, seen[s.ClientMsgID])
			seen[s.ClientMsgID] = true
		}
	}
	assert.Empty(t, srv.Rejected())
	handled := reps[0].ch.Stats().Handled + reps[1].ch.Stats().Handled
	assert.EqualValues(t, customers*each, handled, "each message handled by exactly one replica")
	t.Logf("replica A handled %d, replica B %d", reps[0].ch.Stats().Handled, reps[1].ch.Stats().Handled)
}

// A callback that lands on the replica without the lease is owed by that replica: while another
// replica holds the account (busy with a slow handler, and pulled before the new message arrived),
// the callback's replica waits for the lease, takes it when the holder lets go, and pulls. No
// further callback and no poll is needed.
func TestLeaseGainPullsWithoutAnotherCallback(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	replica := func(slow bool) *env {
		e := &env{t: t, srv: srv, dir: t.TempDir()}
		e.start(WithStores(redis.New(rdb, redis.WithPrefix("gain:"))), WithLeaseTTL(2*time.Second))
		e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
			if slow {
				started <- struct{}{}
				<-release
			}
			return r.Text(ctx, m.Text.Content)
		})
		return e
	}
	// The account is known to the store before the replicas start, so each pulls it once at
	// start-up (the sweep); that is waited out first, or a late sweep on a would pull "second".
	st := redis.New(rdb, redis.WithPrefix("gain:"))
	lease, err := st.Lock(context.Background(), srv.OpenKfID(), time.Second)
	require.NoError(t, err)
	require.NoError(t, lease.SetMeta(context.Background(), metaHistoryBefore, strconv.FormatInt(time.Now().Unix()-60, 10)))
	require.NoError(t, lease.Release(context.Background()))
	a, b := replica(true), replica(false)
	require.Eventually(t, func() bool {
		sa, sb := a.ch.Stats(), b.ch.Stats()
		return sa.Pulls >= 1 && sb.Pulls >= 1 && sa.LeasesHeld == 0 && sb.LeasesHeld == 0
	}, 10*time.Second, 5*time.Millisecond, "the start-up pulls")

	srv.AddText("first", "slow one")
	a.notify()
	<-started // a holds the account, its pull round is over (one page), its handler runs

	srv.AddText("second", "waits for the lease")
	require.NoError(t, srv.Notify(context.Background(), b.url, srv.OpenKfID()))
	time.Sleep(300 * time.Millisecond) // b tries for the lease meanwhile
	assert.Empty(t, srv.SentTo(srv.OpenKfID(), "second"), "answered while a held the lease")
	assert.Zero(t, b.ch.Stats().LeasesHeld, "b holds the lease a holds")

	close(release)
	a.waitSent("first", 1)
	got := b.waitSent("second", 1)
	assert.Equal(t, "waits for the lease", got[0].Text)
	a.settle()
	b.settle()
	assert.EqualValues(t, 1, a.ch.Stats().Replies, "a answered only its own callback's message")
	assert.EqualValues(t, 1, b.ch.Stats().Replies, "b pulled on gaining the lease")
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "first"), 1)
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "second"), 1)
}

// countingTokens is a TokenStore that counts the tokens stored in it.
type countingTokens struct {
	*MemoryTokenStore
	sets atomic.Int32
}

func (c *countingTokens) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	c.sets.Add(1)
	return c.MemoryTokenStore.Set(ctx, key, value, ttl)
}

// WithStores on cursor/redis shares the access token between the Channels on it (one gettoken for
// both), and WithClientOptions(WithTokenStore) overrides that for its own Channel.
func TestStoresShareTheTokenUnlessOverridden(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	newChannel := func(opts ...ChannelOption) *Channel {
		ch, err := NewChannel(kftestConfig(srv),
			append([]ChannelOption{WithStores(redis.New(rdb, redis.WithPrefix("tok:"))), WithClientOptions(WithBaseURL(srv.URL()))}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = ch.Shutdown(ctx) })
		return ch
	}

	a, b := newChannel(), newChannel()
	ta, err := a.Client().AccessToken(ctx)
	require.NoError(t, err)
	tb, err := b.Client().AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, ta, tb, "one token, through Redis")
	assert.Equal(t, 1, srv.Calls("/cgi-bin/gettoken"))
	keys, err := rdb.Keys(ctx, "tok:*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the token is kept in Redis")

	own := &countingTokens{MemoryTokenStore: NewMemoryTokenStore()}
	c := newChannel(WithClientOptions(WithTokenStore(own)))
	_, err = c.Client().AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, srv.Calls("/cgi-bin/gettoken"), "its own store is empty: a gettoken of its own")
	assert.EqualValues(t, 1, own.sets.Load(), "kept in the store it was given")
	tb2, err := b.Client().AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, tb, tb2, "Redis's token untouched by the Channel with its own store")
}

// A callback answered by a replica that dies before it pulls is pulled by another replica, which had
// no callback for it: the first marked the account owed in Redis before answering, and the mark,
// left uncleared, is found by the other's sweep (after two lease TTLs). Normal work leaves no mark.
func TestCallbackOfADeadReplicaIsPulledByAnother(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	const ttl = 500 * time.Millisecond
	replica := func() *env {
		e := &env{t: t, srv: srv, dir: t.TempDir()}
		e.start(WithStores(redis.New(rdb, redis.WithPrefix("owed:"))), WithLeaseTTL(ttl))
		e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
		return e
	}
	a, b := replica(), replica()
	ctx := context.Background()

	// Something else holds the account, so a cannot pull yet; a dies while it waits.
	st := redis.New(rdb, redis.WithPrefix("owed:"))
	held, err := st.Lock(ctx, srv.OpenKfID(), ttl)
	require.NoError(t, err)
	srv.AddText("alice", "answered by whom?")
	a.notify()
	a.ch.crash()
	require.NoError(t, held.Release(ctx))

	got := b.waitSent("alice", 1)
	assert.Equal(t, "answered by whom?", got[0].Text)
	assert.EqualValues(t, 1, b.ch.Stats().OwedSwept)
	assert.Zero(t, a.ch.Stats().Replies)

	// An ordinary callback, pulled by its own replica: its mark is cleared, nothing is swept.
	srv.AddText("bob", "hello")
	b.notify()
	b.waitSent("bob", 1)
	b.settle()
	require.Eventually(t, func() bool { return rdb.ZCard(ctx, "owed:owed").Val() == 0 }, 5*time.Second, 10*time.Millisecond,
		"the marks are cleared")
	time.Sleep(3 * ttl) // past owedAge: a mark left behind would be swept now
	assert.EqualValues(t, 1, b.ch.Stats().OwedSwept, "nothing more to sweep")
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "alice"), 1)
	assert.Len(t, srv.SentTo(srv.OpenKfID(), "bob"), 1)
}
