package kf

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
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

// replicaLoad is a burst against several replicas that share one Redis and one kftest whose every API
// path is limited to ceiling (locking a path for a window once hit): messages offered at load × the
// ceiling for dur, over several accounts, from customers who write 4 messages each (so that the
// 5-message quota never cuts an answer short), each message announced with a callback to a replica
// drawn at random.
type replicaLoad struct {
	replicas int
	cluster  bool
	ceiling  RateCeiling
	load     float64
	dur      time.Duration
	accounts int
}

type replicaLoadResult struct {
	messages int
	accepted int           // sends WeCom accepted while the load was offered
	limited  int           // 45009 answers, any path, from the start to the end of the drain
	drain    time.Duration // from the end of the load until every message was answered
}

// fraction is the accepted sends over what the ceiling allows in the load's time.
func (r replicaLoadResult) fraction(lc replicaLoad) float64 {
	return float64(r.accepted) / (float64(lc.ceiling.Calls) * float64(lc.dur) / float64(lc.ceiling.Per))
}

// runReplicaLoad runs lc and checks that every message was answered exactly once, in order per
// customer.
func runReplicaLoad(tb testing.TB, lc replicaLoad) replicaLoadResult {
	tb.Helper()
	var rdb goredis.UniversalClient
	if lc.cluster {
		rdb = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: redistest.StartCluster(tb)})
	} else {
		addr, _, _ := redistest.Start(tb)
		rdb = goredis.NewClient(&goredis.Options{Addr: addr})
	}
	defer rdb.Close()
	srv := kftest.NewServer()
	defer srv.Close()
	srv.SetRateLimit("", kftest.RateLimit{Calls: lc.ceiling.Calls, Per: lc.ceiling.Per, Lock: lc.ceiling.Per})
	accounts := []string{srv.OpenKfID()}
	for i := 1; i < lc.accounts; i++ {
		accounts = append(accounts, srv.AddAccount(fmt.Sprintf("kf%d", i)))
	}

	reps := make([]*Channel, lc.replicas)
	for i := range reps {
		store := redis.New(rdb, redis.WithPrefix("load:"))
		l, err := NewRateLimiter(WithRateStore(store), WithRateCeilings("", lc.ceiling))
		require.NoError(tb, err)
		ch, err := NewChannel(kftestConfig(srv),
			WithStores(store), WithClientOptions(WithBaseURL(srv.URL()), WithRateLimiter(l)), WithWorkers(32))
		require.NoError(tb, err)
		ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
		reps[i] = ch
	}
	defer func() {
		for _, ch := range reps {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = ch.Shutdown(ctx)
			cancel()
		}
	}()

	rate := lc.load * float64(lc.ceiling.Calls) / lc.ceiling.Per.Seconds() // messages a second
	total := int(rate * lc.dur.Seconds())
	customers := (total + 3) / 4
	var (
		mu       sync.Mutex
		res      = replicaLoadResult{messages: total}
		start    = time.Now()
		end      = start.Add(lc.dur)
		expected = make([][]string, customers)
	)
	stopObs := srv.Observe(func(r kftest.Record) {
		if r.Kind != kftest.RecordAPI {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.ErrCode == kftest.CodeRateLimited:
			res.limited++
		case r.Path == pathSendMsg && r.ErrCode == 0 && !r.At.Before(start) && !r.At.After(end):
			res.accepted++
		}
	})
	defer stopObs()

	customer := func(i int) (openKfID, user string) { return accounts[i%len(accounts)], fmt.Sprintf("c%d", i) }
	tick := time.NewTicker(20 * time.Millisecond)
	for sent := 0; sent < total; {
		now := <-tick.C
		due := min(total, int(math.Ceil(rate*now.Sub(start).Seconds())))
		touched := map[string]bool{}
		for ; sent < due; sent++ {
			i, k := sent%customers, sent/customers
			acc, user := customer(i)
			text := fmt.Sprintf("%s-%d", user, k)
			srv.AddMessage(kftest.Message{OpenKfID: acc, ExternalUserID: user, MsgType: "text", Body: map[string]string{"content": text}})
			expected[i] = append(expected[i], text)
			touched[acc] = true
		}
		for acc := range touched {
			reps[rand.IntN(len(reps))].Trigger(acc, srv.IssueSyncToken(acc))
		}
	}
	tick.Stop()
	loadEnd := time.Now()

	budget := lc.dur*time.Duration(math.Ceil(lc.load/0.9)) + 30*time.Second
	for len(srv.Sent()) < total {
		if time.Since(loadEnd) > budget {
			st := reps[0].Stats()
			tb.Fatalf("answered %d of %d after a drain of %v; replica 0: %+v", len(srv.Sent()), total, time.Since(loadEnd), st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.drain = time.Since(loadEnd)
	time.Sleep(200 * time.Millisecond) // a duplicate would show now
	for i := range customers {
		acc, user := customer(i)
		var got []string
		for _, s := range srv.SentTo(acc, user) {
			got = append(got, s.Text)
		}
		if !assert.Equal(tb, expected[i], got, "customer %s: every message answered once, in order", user) {
			break
		}
	}
	var stats Stats
	for _, ch := range reps {
		s := ch.Stats()
		stats.RateLimited += s.RateLimited
		stats.RateLimitWait += s.RateLimitWait
	}
	assert.Zero(tb, stats.RateLimited, "no replica got a 45009")
	mu.Lock()
	defer mu.Unlock()
	return res
}

// Replicas sharing one Redis (a single node and a Cluster) against WeCom limits scaled down: at 3×
// the ceiling's load, WeCom never answers 45009, and every message is answered once, in order per
// customer, once the burst drains. (BenchmarkReplicasAtThreeTimesTheCeiling is the full-length run.)
func TestReplicasStayUnderWeComLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lc   replicaLoad
	}{
		{"two replicas, single node", replicaLoad{replicas: 2, ceiling: RateCeiling{Calls: 150, Per: 5 * time.Second}, load: 3, dur: 2 * time.Second, accounts: 3}},
		{"four replicas, cluster", replicaLoad{replicas: 4, cluster: true, ceiling: RateCeiling{Calls: 150, Per: 5 * time.Second}, load: 3, dur: 2 * time.Second, accounts: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runReplicaLoad(t, tc.lc)
			t.Logf("%d messages; accepted during the load %d (%.0f%% of the ceiling); 45009: %d; drained in %v",
				res.messages, res.accepted, 100*res.fraction(tc.lc), res.limited, res.drain.Round(time.Millisecond))
			assert.Zero(t, res.limited, "45009 answers")
		})
	}
}

// A 45009 on one replica pauses the path on every replica that shares the Redis: the other replica
// (which never got one) sends nothing to that path until the pause ends, and then both messages are
// answered.
func TestRateLimitPauseReachesEveryReplica(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	kfB := srv.AddAccount("B")
	const pause = time.Second
	var logs lockedLog
	reps := make([]*env, 2)
	for i := range reps {
		store := redis.New(rdb, redis.WithPrefix("pause:"))
		l, err := NewRateLimiter(WithRateStore(store), WithRatePause(pause, 4*pause, pause))
		require.NoError(t, err)
		e := &env{t: t, srv: srv, dir: t.TempDir()}
		e.start(WithStores(store), WithClientOptions(WithRateLimiter(l)), WithRetryBackoff(50*time.Millisecond, 200*time.Millisecond),
			WithChannelLogger(logs.logger()))
		e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
		reps[i] = e
	}

	var (
		mu       sync.Mutex
		limitAt  time.Time
		attempts []time.Time // send_msg calls that reached WeCom
	)
	stop := srv.Observe(func(r kftest.Record) {
		if r.Kind != kftest.RecordAPI || r.Path != pathSendMsg {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, r.At)
		if r.ErrCode == kftest.CodeRateLimited && limitAt.IsZero() {
			limitAt = r.At
		}
	})
	t.Cleanup(stop)

	srv.FailWith(pathSendMsg, kftest.CodeRateLimited, "api freq out of limit")
	srv.AddText("a1", "to A")
	reps[0].ch.Trigger(srv.OpenKfID(), srv.IssueSyncToken(srv.OpenKfID()))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return !limitAt.IsZero() }, 5*time.Second, 5*time.Millisecond)
	srv.Handle(pathSendMsg, nil) // WeCom would answer again now; the pause still holds

	srv.AddMessage(kftest.Message{OpenKfID: kfB, ExternalUserID: "b1", MsgType: "text", Body: map[string]string{"content": "to B"}})
	reps[1].ch.Trigger(kfB, srv.IssueSyncToken(kfB))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sentB, err := srv.WaitSentTo(ctx, kfB, "b1", 1)
	require.NoError(t, err, "logs:\n%s", logs.String())
	sentA, err := srv.WaitSentTo(ctx, srv.OpenKfID(), "a1", 1)
	require.NoError(t, err, "logs:\n%s", logs.String())

	mu.Lock()
	defer mu.Unlock()
	for _, at := range attempts {
		if at.After(limitAt) {
			assert.GreaterOrEqual(t, at.Sub(limitAt), pause-50*time.Millisecond, "no send reached WeCom during the pause")
		}
	}
	assert.GreaterOrEqual(t, sentB[0].At.Sub(limitAt), pause-50*time.Millisecond, "replica B waited for the pause it did not see itself")
	assert.GreaterOrEqual(t, sentA[0].At.Sub(limitAt), pause-50*time.Millisecond)
	a, b := reps[0].ch.Stats(), reps[1].ch.Stats()
	assert.EqualValues(t, 1, a.RateLimited)
	assert.EqualValues(t, 1, a.RateLimitPauses)
	assert.Zero(t, b.RateLimited)
	assert.Greater(t, b.RateLimitWait, pause/2, "replica B's send waited")
	assert.Contains(t, logs.String(), "calls paused for the corp")
}
