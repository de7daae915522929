package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wxkf/wxkf/cursor"
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

// batchFixture returns a Store on a fresh server whose account "wk" has 10,000 msgids marked done (the even
// ones), and 1000 msgids to look up, half of them done.
func batchFixture(b *testing.B) (*redis.Store, []string) {
	addr, _, _ := redistest.Start(b)
	s := redis.New(newClient(b, addr))
	marked := make([]string, 10_000)
	for i := range marked {
		marked[i] = fmt.Sprintf("msgid-%012d", 2*i)
	}
	if err := s.MarkDone(context.Background(), "wk", marked...); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("msgid-%012d", i)
	}
	return s, ids
}

// BenchmarkRedisDedupBatch1000 checks 1000 msgids (half of them done, in a set of 10,000) in one round trip.
func BenchmarkRedisDedupBatch1000(b *testing.B) {
	ctx := context.Background()
	s, ids := batchFixture(b)
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

// BenchmarkRedisLookup1000 looks up a sync_msg page's worth of msgids (1000: half done in a set of 10,000, and
// 10 with a reply record) in one round trip.
func BenchmarkRedisLookup1000(b *testing.B) {
	ctx := context.Background()
	s, ids := batchFixture(b)
	l := benchLease(b, s)
	for i := range 10 {
		if err := l.PutReply(ctx, ids[2*i+1], []byte(`{"parts":["a reply","in two parts"]}`)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Lookup(ctx, "wk", ids...)
		if err != nil || len(got) != len(ids) || !got[0].Done || got[1].Reply == nil || got[999].Reply != nil {
			b.Fatal(got[:2], err)
		}
	}
}

// benchLease holds the lease on "wk" for the rest of the benchmark.
func benchLease(b *testing.B, s *redis.Store) cursor.Lease {
	l, err := s.Lock(context.Background(), "wk", time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

// BenchmarkRedisLeaseWrite is each fenced write through a held lease: one script that checks the lease and
// writes. MarkDone1 is the done mark of one handled message (which also deletes its reply record): what the
// sync engine writes per message; PutReply1KiB stores a reply record of 1 KiB.
func BenchmarkRedisLeaseWrite(b *testing.B) {
	ctx := context.Background()
	addr, _, _ := redistest.Start(b)
	rec := bytes.Repeat([]byte("r"), 1024)
	for _, bc := range []struct {
		name  string
		write func(l cursor.Lease, i int) error
	}{
		{"Save", func(l cursor.Lease, i int) error { return l.Save(ctx, "cursor-"+strconv.Itoa(i)) }},
		{"SetMeta", func(l cursor.Lease, i int) error { return l.SetMeta(ctx, "history_before", strconv.Itoa(i)) }},
		{"MarkDone1", func(l cursor.Lease, i int) error { return l.MarkDone(ctx, "msgid-"+strconv.Itoa(i)) }},
		{"PutReply1KiB", func(l cursor.Lease, i int) error { return l.PutReply(ctx, "msgid-"+strconv.Itoa(i%1000), rec) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := benchLease(b, redis.New(newClient(b, addr), redis.WithPrefix(bc.name+":")))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := bc.write(l, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
