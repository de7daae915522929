package kf

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// BenchmarkRateLimiterWait is the limiter's cost per API call when the budget is not spent (ceilings
// far above the load, so nothing waits for the budget): the per-IP and per-corp GCRA, in this process
// or one Lua script on Redis (a single node, a Cluster), called from one goroutine and from many.
func BenchmarkRateLimiterWait(b *testing.B) {
	addr, _, _ := redistest.Start(b)
	single := goredis.NewClient(&goredis.Options{Addr: addr})
	defer single.Close()
	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: redistest.StartCluster(b)})
	defer cluster.Close()
	huge := RateCeiling{Calls: 1 << 40, Per: time.Minute}
	for _, bc := range []struct {
		name  string
		store RateStore
	}{
		{"local", nil},
		{"redis", redis.New(single, redis.WithPrefix("bench:"))},
		{"cluster", redis.New(cluster, redis.WithPrefix("bench:"))},
	} {
		opts := []RateLimiterOption{WithRateCeilings("", huge, huge), WithIPRateCeilings(huge)}
		if bc.store != nil {
			opts = append(opts, WithRateStore(bc.store))
		}
		l, err := NewRateLimiter(opts...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Wait(ctx, "wwbench", pathSendMsg, PriorityFresh); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Wait(ctx, "wwbench", pathSendMsg, PriorityFresh); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReplicasAtThreeTimesTheCeiling: four replicas on one Redis (a single node, a Cluster),
// kftest's limits scaled to 600 calls a minute per API (locking the API for a minute once hit), and a
// load of 3× that ceiling for 2 minutes. It reports the accepted sends during the load as a fraction
// of the ceiling (target ≥ 0.95), the 45009 answers (target 0) and how long the burst took to drain;
// it fails unless every message was answered once, in order per customer. It takes about 13 minutes:
// `make bench` runs it, -short skips it (TestReplicasStayUnderWeComLimits is the short run).
func BenchmarkReplicasAtThreeTimesTheCeiling(b *testing.B) {
	if testing.Short() {
		b.Skip("takes minutes")
	}
	for _, cluster := range []bool{false, true} {
		name := "single"
		if cluster {
			name = "cluster"
		}
		b.Run(name, func(b *testing.B) {
			lc := replicaLoad{replicas: 4, cluster: cluster, ceiling: RateCeiling{Calls: 600, Per: time.Minute},
				load: 3, dur: 2 * time.Minute, accounts: 20}
			var res replicaLoadResult
			for b.Loop() {
				res = runReplicaLoad(b, lc)
			}
			b.ReportMetric(res.fraction(lc), "ceiling-fraction")
			b.ReportMetric(float64(res.limited), "45009s")
			b.ReportMetric(res.drain.Seconds(), "drain-s")
			b.ReportMetric(float64(res.messages), "messages")
			if res.fraction(lc) < 0.95 || res.limited > 0 {
				b.Errorf("accepted %.1f%% of the ceiling with %d × 45009; want ≥ 95%% and none", 100*res.fraction(lc), res.limited)
			}
		})
	}
}
