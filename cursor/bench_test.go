package cursor_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wxkf/wxkf/cursor"
)

// BenchmarkFileSaveLoad is one durable Save (temp file, fsync, rename, directory fsync) plus one Load, with 20
// accounts in the file.
func BenchmarkFileSaveLoad(b *testing.B) {
	ctx := context.Background()
	d, err := cursor.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for i := range 20 {
		if err := d.Save(ctx, fmt.Sprintf("wk%02d", i), "4gw7MepFLfgF2VC5npN"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		cur := fmt.Sprintf("cursor-%d", i)
		if err := d.Save(ctx, "wk07", cur); err != nil {
			b.Fatal(err)
		}
		got, err := d.Load(ctx, "wk07")
		if err != nil || got != cur {
			b.Fatal(got, err)
		}
	}
}

// BenchmarkFileMarkDone is one fsynced journal append of a page's worth of msgids (100).
func BenchmarkFileMarkDone100(b *testing.B) {
	ctx := context.Background()
	d, err := cursor.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ids := make([]string, 100)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for j := range ids {
			n++
			ids[j] = fmt.Sprintf("msgid-%012d", n)
		}
		if err := d.MarkDone(ctx, "wk", ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileDedupBatch1000 checks 1000 msgids (half of them done) against the in-memory set.
func BenchmarkFileDedupBatch1000(b *testing.B) {
	ctx := context.Background()
	d, err := cursor.OpenDir(b.TempDir(), cursor.WithJournalSync(false))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("msgid-%012d", i)
	}
	if err := d.MarkDone(ctx, "wk", ids[:500]...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Done(ctx, "wk", ids...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileMarkDoneParallel is the Channel's pattern: many handlers each marking one msgid done
// at once, each waiting until its mark is durable (journal fsync).
func BenchmarkFileMarkDoneParallel(b *testing.B) {
	ctx := context.Background()
	d, err := cursor.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 concurrent handlers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := d.MarkDone(ctx, "wk", fmt.Sprintf("msgid-%012d", n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
