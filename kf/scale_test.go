package kf

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

// Two corps in one process: two Channels on two callback paths of one mux, sharing one Redis with
// keys namespaced by corp. Each answers its own customers, and neither sees the other's state.
func TestTwoCorpsOneRedis(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	type corp struct {
		srv *kftest.Server
		ch  *Channel
		url string
	}
	var corps []corp
	for i, id := range []string{"wwcorpa0000000001", "wwcorpb0000000002"} {
		srv := kftest.NewServer(kftest.WithCorpID(id), kftest.WithSeed(int64(i+1)))
		t.Cleanup(srv.Close)
		ch, err := NewChannel(kftestConfig(srv),
			WithStores(redis.New(rdb, redis.WithPrefix("wxkf:"+id+":"))), WithClientOptions(WithBaseURL(srv.URL())))
		require.NoError(t, err)
		ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
			return r.Text(ctx, id+" says: "+m.Text.Content)
		})
		path := "/wxkf/" + id + "/"
		mux.Handle(path, ch)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = ch.Shutdown(ctx)
		})
		corps = append(corps, corp{srv, ch, hs.URL + path})
	}
	for round := range 3 {
		for _, c := range corps {
			c.srv.AddText("same-customer-name", fmt.Sprintf("hello %d", round))
			require.NoError(t, c.srv.Notify(context.Background(), c.url, c.srv.OpenKfID()))
		}
		time.Sleep(1100 * time.Millisecond) // a later second: a fresh quota for the next round
	}
	for _, c := range corps {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sent, err := c.srv.WaitSentTo(ctx, c.srv.OpenKfID(), "same-customer-name", 3)
		cancel()
		require.NoError(t, err)
		for i, s := range sent {
			assert.Equal(t, fmt.Sprintf("%s says: hello %d", c.srv.CorpID(), i), s.Text)
		}
	}
	keys, err := rdb.Keys(context.Background(), "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "wxkf:wwcorpa0000000001:") || strings.HasPrefix(k, "wxkf:wwcorpb0000000002:"), k)
	}
}

// Two replicas on a 3-master Redis Cluster, callbacks spread over them: every customer message is
// answered exactly once, in order.
func TestTwoReplicasOnRedisCluster(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	var reps []*env
	for range 2 {
		rdb := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = rdb.Close() })
		e := &env{t: t, srv: srv, dir: t.TempDir()}
		e.start(WithStores(redis.New(rdb, redis.WithPrefix("cluster:"))), WithLeaseTTL(2*time.Second))
		e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
		reps = append(reps, e)
	}
	want := map[string][]string{}
	for i := range 4 {
		for c := range 6 {
			u := fmt.Sprintf("k%d", c)
			text := fmt.Sprintf("%s-%d", u, i)
			want[u] = append(want[u], text)
			srv.AddText(u, text)
			require.NoError(t, srv.Notify(context.Background(), reps[rand.IntN(2)].url, srv.OpenKfID()))
		}
	}
	for u, w := range want {
		reps[0].waitTexts(u, w, 20*time.Second)
	}
}

// BenchmarkManyAccounts runs one process with 500 and 2,000 accounts of 3 customers each, one
// callback per account: all answered. It reports the goroutines and heap added once every account is
// idle again (the fake WeCom's state is in the same process: it is created before the first
// measurement, and its records of the sends are counted in), per idle account, and the process's
// peak RSS.
func BenchmarkManyAccounts(b *testing.B) {
	for _, accounts := range []int{500, 2000} {
		b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
			for b.Loop() {
				r := manyAccounts(b, accounts, 3)
				b.ReportMetric(float64(r.goroutinesAdded), "goroutines-added")
				b.ReportMetric(float64(r.accountGoroutines), "account-goroutines")
				b.ReportMetric(r.heapPerAccount, "heap-B/idle-account")
				b.ReportMetric(float64(r.answered), "answered")
				b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MB")
			}
		})
	}
}

// An idle account costs no goroutine (and no timer): after 300 accounts were each woken by a
// callback and answered, none of their loops, holdings or leases is left running.
func TestManyAccountsIdleCostNoGoroutine(t *testing.T) {
	r := manyAccounts(t, 300, 2)
	require.Equal(t, 600, r.answered)
	require.Zero(t, r.accountGoroutines, "goroutines of idle accounts")
	t.Logf("goroutines added %d (idle HTTP connections), heap %.0f B per idle account", r.goroutinesAdded, r.heapPerAccount)
}

type manyAccountsResult struct {
	goroutinesAdded, accountGoroutines, answered int
	heapPerAccount                               float64
}

// manyAccounts runs one Channel with accounts accounts of customers customers each, one callback per
// account, and measures it once every account is idle again.
func manyAccounts(tb testing.TB, accounts, customers int) manyAccountsResult {
	srv := kftest.NewServer()
	defer srv.Close()
	var ids []string
	// Sent a minute before the Channel starts (as if it had been down), so that the run does not
	// depend on whether setting up crossed a second.
	sent := time.Now().Add(-time.Minute)
	for i := range accounts {
		id := srv.AddAccount(fmt.Sprintf("account %d", i))
		ids = append(ids, id)
		for c := range customers {
			srv.AddMessage(kftest.Message{OpenKfID: id, ExternalUserID: fmt.Sprintf("u%d", c), SendTime: sent, MsgType: "text",
				Body: map[string]string{"content": "hi"}})
		}
	}
	ch, err := NewChannel(kftestConfig(srv),
		WithStateDir(tb.TempDir()), WithClientOptions(WithBaseURL(srv.URL())), WithWorkers(64),
		// Not history to skip: the Channel was down, not new.
		WithSkipHistory(false))
	if err != nil {
		tb.Fatal(err)
	}
	ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, "ok") })
	hs := httptest.NewServer(ch)
	defer hs.Close()
	defer func() { _ = ch.Shutdown(context.Background()) }()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goIdle := runtime.NumGoroutine()
	for _, id := range ids {
		if err := srv.Notify(context.Background(), hs.URL, id); err != nil {
			tb.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for ch.Stats().Handled < int64(accounts*customers) || ch.Stats().LeasesHeld > 0 {
		if st := ch.Stats(); st.HistorySkipped > 0 {
			tb.Fatalf("%d messages skipped as history", st.HistorySkipped)
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<24)
			buf = buf[:runtime.Stack(buf, true)]
			_ = os.WriteFile(filepath.Join(os.TempDir(), "wxkf-manyaccounts-stacks.txt"), buf, 0o644)
			tb.Fatalf("stalled: %+v; %d answered; goroutine stacks in %s", ch.Stats(), len(srv.Sent()),
				filepath.Join(os.TempDir(), "wxkf-manyaccounts-stacks.txt"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The last holdings end just after their counters say so: wait for their goroutines to return.
	var stacks string
	for range 100 {
		buf := make([]byte, 1<<22)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if accountGoroutines(stacks) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return manyAccountsResult{
		// The others added are idle HTTP keep-alive connections, bounded by the transports' pools.
		goroutinesAdded:   runtime.NumGoroutine() - goIdle,
		accountGoroutines: accountGoroutines(stacks),
		heapPerAccount:    float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(accounts),
		answered:          len(srv.Sent()),
	}
}

// accountGoroutines counts the goroutines of accounts in a dump of all stacks: loops, holdings,
// markers, committers, lease renewals.
func accountGoroutines(stacks string) int {
	n := 0
	for _, f := range []string{"kf.(*account).run", "kf.(*session)", "redis.(*lease).renew"} {
		n += strings.Count(stacks, f)
	}
	return n
}

// peakRSS is the process's peak resident set (VmHWM of /proc/self/status), 0 where unknown.
func peakRSS(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Logf("VmHWM: %v", err)
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
