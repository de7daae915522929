package redis_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// BenchmarkRedisSaveLoad is one SET plus one GET against a local redis-server.
func BenchmarkRedisSaveLoad(b *testing.B) {
	ctx := context.Background()
	addr, _, _ := redistest.Start(b)
	s := redis.New(newClient(b, addr))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		cur := fmt.Sprintf("cursor-%d", i)
		if err := s.Save(ctx, "wk", cur); err != nil {
			b.Fatal(err)
		}
		got, err := s.Load(ctx, "wk")
		if err != nil || got != cur {
			b.Fatal(got, err)
		}
	}
}

// BenchmarkRedisDedupBatch1000 checks 1000 msgids (half of them done, in a set of 10,000) in one round trip.
func BenchmarkRedisDedupBatch1000(b *testing.B) {
	ctx := context.Background()
	addr, _, _ := redistest.Start(b)
	s := redis.New(newClient(b, addr))
	marked := make([]string, 10_000)
	for i := range marked {
		marked[i] = fmt.Sprintf("msgid-%012d", 2*i)
	}
	if err := s.MarkDone(ctx, "wk", marked...); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("msgid-%012d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Done(ctx, "wk", ids...)
		if err != nil || len(got) != len(ids) || !got[0] || got[1] {
			b.Fatal(got, err)
		}
	}
}

// BenchmarkRedisMarkDone100 marks a page's worth of msgids (100) done: one script call.
func BenchmarkRedisMarkDone100(b *testing.B) {
	ctx := context.Background()
	addr, _, _ := redistest.Start(b)
	s := redis.New(newClient(b, addr))
	ids := make([]string, 100)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for j := range ids {
			n++
			ids[j] = fmt.Sprintf("msgid-%012d", n)
		}
		if err := s.MarkDone(ctx, "wk", ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisLockRelease is acquiring and releasing a free lease (SET NX PX, then compare-and-DEL).
func BenchmarkRedisLockRelease(b *testing.B) {
	ctx := context.Background()
	addr, _, _ := redistest.Start(b)
	s := redis.New(newClient(b, addr))
	b.ReportAllocs()
	for b.Loop() {
		l, err := s.Lock(ctx, "wk", 30e9)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
