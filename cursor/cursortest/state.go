package cursortest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
)

// stateTests check what a cursor.State adds to Store, Locker and Dedup: metadata, reply records, Lookup,
// Accounts, and the Lease's Key, Token and fenced writes.
var stateTests = []test{
	{name: "Lease/KeyAndToken", fn: testLeaseKeyAndToken, state: true},
	{name: "Lease/Writes", fn: testLeaseWrites, state: true},
	{name: "Lease/WritesInvalidArgument", fn: testLeaseWritesInvalid, state: true},
	{name: "Lease/FencedAfterTakeover", fn: testFencedAfterTakeover, state: true},
	{name: "Lease/FencedAfterRelease", fn: testFencedAfterRelease, state: true},
	{name: "Lease/ErrAtDeadline", fn: testLeaseErrAtDeadline, state: true},
	{name: "Lease/ConcurrentWritesAndTakeover", fn: testFencedConcurrent, state: true},
	{name: "State/Meta", fn: testMeta, state: true},
	{name: "State/MetaInvalidArgument", fn: testMetaInvalid, state: true},
	{name: "State/Lookup", fn: testLookup, state: true},
	{name: "State/LookupBatch", fn: testLookupBatch, state: true},
	{name: "State/LookupInvalidArgument", fn: testLookupInvalid, state: true},
	{name: "State/ReplyExpiry", fn: testReplyExpiry, state: true},
	{name: "State/Accounts", fn: testAccounts, state: true},
	{name: "State/ContextCanceled", fn: testStateContextCanceled, state: true},
	{name: "State/Durable", fn: testStateDurable, state: true},
}

// lock takes key on h with ttl, failing the test if it cannot within patience.
func lock(t *testing.T, h *Harness, key string, ttl time.Duration) cursor.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	l, err := h.State.Lock(ctx, key, ttl)
	require.NoError(t, err)
	require.NotNil(t, l)
	return l
}

// withLease runs fn with a fresh lease on key and releases it afterwards.
func withLease(t *testing.T, h *Harness, key string, fn func(l cursor.Lease)) {
	t.Helper()
	l := lock(t, h, key, ttl)
	fn(l)
	require.NoError(t, l.Release(ctxT(t)))
}

func lookup(t *testing.T, s cursor.State, key string, ids ...string) []cursor.Status {
	t.Helper()
	got, err := s.Lookup(ctxT(t), key, ids...)
	require.NoError(t, err)
	require.Len(t, got, len(ids))
	return got
}

// requireSaved checks the cursor of key and its metadata value under name.
func requireSaved(t *testing.T, s cursor.State, key, cur, name, meta string) {
	t.Helper()
	ctx := ctxT(t)
	got, err := s.Load(ctx, key)
	require.NoError(t, err)
	require.Equal(t, cur, got, "cursor of %s", key)
	got, err = s.LoadMeta(ctx, key, name)
	require.NoError(t, err)
	require.Equal(t, meta, got, "%s of %s", name, key)
}

func reply(b string) cursor.Status { return cursor.Status{Reply: []byte(b)} }

var done = cursor.Status{Done: true}

func testLeaseKeyAndToken(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l1 := lock(t, h, "wk", ttl)
	require.Equal(t, "wk", l1.Key())
	require.Positive(t, l1.Token())
	t1 := l1.Token()
	require.NoError(t, l1.Release(ctx))
	require.Equal(t, t1, l1.Token(), "the token of a holding does not change")

	l2 := lock(t, h, "wk", ttl)
	require.Greater(t, l2.Token(), t1, "a later holding has a greater token")
	t2 := l2.Token()
	h.ExpireLease("wk")
	l3 := lock(t, h, "wk", ttl)
	require.Greater(t, l3.Token(), t2, "a takeover has a greater token")
	require.NoError(t, l3.Release(ctx))

	other := lock(t, h, "wk账号", ttl)
	require.Equal(t, "wk账号", other.Key())
	require.Positive(t, other.Token())
	require.NoError(t, other.Release(ctx))
}

func testLeaseWrites(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	s := h.State
	l := lock(t, h, "wk", ttl)
	require.NoError(t, l.Save(ctx, "c1"))
	require.NoError(t, l.Save(ctx, "c2"))
	require.NoError(t, l.SetMeta(ctx, "history_before", "1741944413"))
	require.NoError(t, l.PutReply(ctx, "m1", []byte(`{"parts":["a","b"]}`)))
	require.NoError(t, l.PutReply(ctx, "m2", []byte("r2")))
	require.NoError(t, l.PutReply(ctx, "m2", []byte("r2, replaced")))
	require.NoError(t, l.MarkDone(ctx, "m1", "m3"))
	require.NoError(t, l.MarkDone(ctx), "nothing to mark is fine")

	requireSaved(t, s, "wk", "c2", "history_before", "1741944413")
	require.Equal(t, []cursor.Status{done, reply("r2, replaced"), done, {}},
		lookup(t, s, "wk", "m1", "m2", "m3", "m4"), "MarkDone deletes the reply record of m1")
	marks, err := s.Done(ctx, "wk", "m1", "m2", "m3")
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true}, marks, "Done sees the lease's marks")
	require.NoError(t, l.Err())
	require.NoError(t, l.Release(ctx))

	// A record is opaque bytes, up to the limit.
	big := make([]byte, cursor.MaxReplyLen)
	for i := range big {
		big[i] = byte(i)
	}
	withLease(t, h, "wk", func(l cursor.Lease) {
		require.NoError(t, l.PutReply(ctx, "big", big))
		require.NoError(t, l.PutReply(ctx, "消息😀", []byte{0, 0xff, '\n'}))
	})
	require.Equal(t, []cursor.Status{{Reply: big}, {Reply: []byte{0, 0xff, '\n'}}}, lookup(t, s, "wk", "big", "消息😀"))

	// The unfenced MarkDone also deletes reply records: a done msgid has none.
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "big"))
	require.Equal(t, []cursor.Status{done}, lookup(t, s, "wk", "big"))
}

func testLeaseWritesInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l := lock(t, h, "wk", ttl)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"over-long cursor", l.Save(ctx, strings.Repeat("c", cursor.MaxCursorLen+1))},
		{"invalid UTF-8 cursor", l.Save(ctx, "c\xfe")},
		{"empty meta name", l.SetMeta(ctx, "", "v")},
		{"over-long meta name", l.SetMeta(ctx, strings.Repeat("n", cursor.MaxMetaNameLen+1), "v")},
		{"upper-case meta name", l.SetMeta(ctx, "History", "v")},
		{"meta name with a dash", l.SetMeta(ctx, "a-b", "v")},
		{"over-long meta value", l.SetMeta(ctx, "n", strings.Repeat("v", cursor.MaxCursorLen+1))},
		{"invalid UTF-8 meta value", l.SetMeta(ctx, "n", "\xff")},
		{"empty msgid", l.MarkDone(ctx, "m", "")},
		{"over-long msgid", l.MarkDone(ctx, strings.Repeat("m", cursor.MaxMsgIDLen+1))},
		{"invalid UTF-8 msgid", l.PutReply(ctx, "m\xff", []byte("r"))},
		{"empty reply msgid", l.PutReply(ctx, "", []byte("r"))},
		{"empty record", l.PutReply(ctx, "m", nil)},
		{"over-long record", l.PutReply(ctx, "m", make([]byte, cursor.MaxReplyLen+1))},
	} {
		require.ErrorIs(t, tc.err, cursor.ErrInvalidArgument, tc.name)
	}
	require.NoError(t, l.Err(), "a rejected argument does not end the lease")
	requireSaved(t, h.State, "wk", "", "n", "")
	require.Equal(t, []cursor.Status{{}}, lookup(t, h.State, "wk", "m"), "a rejected write writes nothing")
	require.NoError(t, l.Release(ctx))
}

// oldWrites makes each fenced write through l and checks that all are refused with want.
func oldWrites(t *testing.T, l cursor.Lease, want error) {
	t.Helper()
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Save", l.Save(ctx, "stale")},
		{"SetMeta", l.SetMeta(ctx, "history_before", "stale")},
		{"MarkDone", l.MarkDone(ctx, "m-old", "m-new-reply")},
		{"PutReply", l.PutReply(ctx, "m-new", []byte("stale"))},
		{"PutReply over a record", l.PutReply(ctx, "m-new-reply", []byte("stale"))},
		{"MarkDone of nothing", l.MarkDone(ctx)},
	} {
		require.ErrorIs(t, tc.err, want, tc.name)
	}
}

// checkNewHolderState checks what the new holder wrote in testFencedAfterTakeover and testFencedAfterRelease.
func checkNewHolderState(t *testing.T, s cursor.State) {
	t.Helper()
	requireSaved(t, s, "wk", "new", "history_before", "new")
	require.Equal(t, []cursor.Status{{}, reply("new"), {}, done},
		lookup(t, s, "wk", "m-old", "m-new-reply", "m-new", "m-done"), "the old holder wrote nothing")
}

func newHolderWrites(t *testing.T, l cursor.Lease) {
	t.Helper()
	ctx := ctxT(t)
	require.NoError(t, l.Save(ctx, "new"))
	require.NoError(t, l.SetMeta(ctx, "history_before", "new"))
	require.NoError(t, l.PutReply(ctx, "m-new-reply", []byte("new")))
	require.NoError(t, l.MarkDone(ctx, "m-done"))
}

// After the lease expired and another holder took the key, every write through the old lease is refused
// with ErrLeaseLost and changes nothing, while the new holder's writes succeed.
func testFencedAfterTakeover(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	old := lock(t, h, "wk", shortTTL)
	require.NoError(t, old.Save(ctx, "old"))
	h.ExpireLease("wk")
	cur := lock(t, h, "wk", ttl)
	newHolderWrites(t, cur)

	oldWrites(t, old, cursor.ErrLeaseLost)
	require.ErrorIs(t, old.Err(), cursor.ErrLeaseLost)
	require.True(t, closedWithin(old.Done(), patience), "a refused write ends the lease, or the renewer does")

	checkNewHolderState(t, h.State)
	require.NoError(t, cur.Err(), "the old holder's refused writes do not disturb the new holder")
	require.NoError(t, cur.Save(ctx, "new"))
	require.NoError(t, cur.Release(ctx))
	checkNewHolderState(t, h.State)
}

func testFencedAfterRelease(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	old := lock(t, h, "wk", ttl)
	require.NoError(t, old.Release(ctx))
	oldWrites(t, old, cursor.ErrReleased)

	cur := lock(t, h, "wk", ttl)
	newHolderWrites(t, cur)
	require.NoError(t, cur.Release(ctx))
	oldWrites(t, old, cursor.ErrReleased)
	oldWrites(t, cur, cursor.ErrReleased)
	checkNewHolderState(t, h.State)
}

// Once the lease's deadline has passed, Err reports ErrLeaseLost at once, even though the renewer has not run
// (it is stalled, or it ticks in real time while the harness clock jumped), and the fenced writes are refused.
func testLeaseErrAtDeadline(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l := lock(t, h, "wk", shortTTL)
	require.NoError(t, l.Save(ctx, "held"))
	stalled := h.StallRenewals != nil
	if stalled {
		resume := h.StallRenewals()
		var once sync.Once
		defer once.Do(resume)
		h.Advance(shortTTL + shortTTL/4)
		require.ErrorIs(t, l.Err(), cursor.ErrLeaseLost, "the deadline passed: Err must say so by itself")
		require.False(t, isClosed(l.Done()), "the renewer is stalled: the loss came from Err's own clock")
		oldWrites(t, l, cursor.ErrLeaseLost)
		once.Do(resume)
	} else {
		h.Advance(shortTTL + shortTTL/4)
		require.ErrorIs(t, l.Err(), cursor.ErrLeaseLost, "the deadline passed: Err must say so by itself")
		oldWrites(t, l, cursor.ErrLeaseLost)
	}
	require.True(t, closedWithin(l.Done(), patience), "the renewer reports the loss too")
	require.ErrorIs(t, l.Err(), cursor.ErrLeaseLost)
	require.ErrorIs(t, l.Release(ctx), cursor.ErrLeaseLost)

	got, err := h.State.Load(ctx, "wk")
	require.NoError(t, err)
	require.Equal(t, "held", got, "nothing was written after the deadline")
	cur := lock(t, h, "wk", ttl)
	require.NoError(t, cur.Save(ctx, "next"))
	require.NoError(t, cur.Release(ctx))
}

// Writers race a takeover: once the new holder has written, no write of the old holder lands after it.
func testFencedConcurrent(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	old := lock(t, h, "wk", shortTTL)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("old-w%d-%d", w, i)
				err := old.Save(ctx, id)
				if err == nil {
					err = old.MarkDone(ctx, id)
				}
				if err != nil {
					assert.ErrorIs(t, err, cursor.ErrLeaseLost)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	h.ExpireLease("wk")
	cur := lock(t, h, "wk", ttl)
	require.NoError(t, cur.Save(ctx, "new"))
	require.NoError(t, cur.MarkDone(ctx, "new-mark"))
	time.Sleep(50 * time.Millisecond) // let the old writers try again
	close(stop)
	wg.Wait()
	got, err := h.State.Load(ctx, "wk")
	require.NoError(t, err)
	require.Equal(t, "new", got, "a stale Save landed after the new holder's")
	require.NoError(t, cur.Release(ctx))
}

func testMeta(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	s := h.State
	got, err := s.LoadMeta(ctx, "wk", "history_before")
	require.NoError(t, err)
	require.Empty(t, got, "never set")

	withLease(t, h, "wk", func(l cursor.Lease) {
		require.NoError(t, l.SetMeta(ctx, "history_before", "1741944413"))
		require.NoError(t, l.SetMeta(ctx, "a", "游标 \"x\"\n"))
		require.NoError(t, l.SetMeta(ctx, strings.Repeat("z", cursor.MaxMetaNameLen), strings.Repeat("v", cursor.MaxCursorLen)))
		require.NoError(t, l.SetMeta(ctx, "emptied", "x"))
		require.NoError(t, l.SetMeta(ctx, "emptied", ""))
		require.NoError(t, l.SetMeta(ctx, "a", "second"))
	})
	withLease(t, h, "wkOther", func(l cursor.Lease) {
		require.NoError(t, l.SetMeta(ctx, "history_before", "other"))
	})
	for _, tc := range []struct{ key, name, want string }{
		{"wk", "history_before", "1741944413"},
		{"wk", "a", "second"},
		{"wk", strings.Repeat("z", cursor.MaxMetaNameLen), strings.Repeat("v", cursor.MaxCursorLen)},
		{"wk", "emptied", ""},
		{"wk", "b", ""},
		{"wkOther", "history_before", "other"},
		{"wkOther", "a", ""},
	} {
		got, err := s.LoadMeta(ctx, tc.key, tc.name)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s %s", tc.key, tc.name)
	}
	cur, err := s.Load(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, cur, "metadata is not the cursor")
}

func testMetaInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range []struct{ name, key, meta string }{
		{"empty open_kfid", "", "history_before"},
		{"over-long open_kfid", strings.Repeat("k", cursor.MaxKeyLen+1), "n"},
		{"empty name", "wk", ""},
		{"over-long name", "wk", strings.Repeat("n", cursor.MaxMetaNameLen+1)},
		{"name with a dot", "wk", "a.b"},
		{"non-ASCII name", "wk", "名"},
	} {
		got, err := h.State.LoadMeta(ctx, tc.key, tc.meta)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, tc.name)
		require.Empty(t, got, tc.name)
	}
}

func testLookup(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	s := h.State
	require.Equal(t, []cursor.Status{{}, {}}, lookup(t, s, "wk", "m1", "m2"))
	got, err := s.Lookup(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got)

	withLease(t, h, "wk", func(l cursor.Lease) {
		require.NoError(t, l.PutReply(ctx, "m1", []byte("r1")))
		require.NoError(t, l.PutReply(ctx, "m2", []byte("r2")))
		require.NoError(t, l.PutReply(ctx, "m3", []byte("r3")))
		require.NoError(t, l.MarkDone(ctx, "m2", "m4"))
	})
	withLease(t, h, "wkB", func(l cursor.Lease) {
		require.NoError(t, l.PutReply(ctx, "m1", []byte("other account")))
	})
	require.Equal(t, []cursor.Status{reply("r1"), done, reply("r3"), done, {}, reply("r1")},
		lookup(t, s, "wk", "m1", "m2", "m3", "m4", "m5", "m1"))
	require.Equal(t, []cursor.Status{reply("other account"), {}}, lookup(t, s, "wkB", "m1", "m2"))

	// Lookup hands out copies: changing one changes nothing stored.
	st := lookup(t, s, "wk", "m1")
	st[0].Reply[0] = 'X'
	require.Equal(t, []cursor.Status{reply("r1")}, lookup(t, s, "wk", "m1"))

	// A record put after its msgid was marked done does not make it undone.
	withLease(t, h, "wk", func(l cursor.Lease) {
		require.NoError(t, l.PutReply(ctx, "m4", []byte("late")))
	})
	require.Equal(t, []cursor.Status{done}, lookup(t, s, "wk", "m4"))
}

func testLookupBatch(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	ids := make([]string, 2500)
	want := make([]cursor.Status, len(ids))
	var marked []string
	withLease(t, h, "wk", func(l cursor.Lease) {
		for i := range ids {
			ids[i] = fmt.Sprintf("msg-%04d", i)
			switch i % 3 {
			case 0:
				marked = append(marked, ids[i])
				want[i] = done
			case 1:
				if i < 200 { // a few records; the rest stays unknown
					rec := fmt.Appendf(nil, "reply to %d", i)
					require.NoError(t, l.PutReply(ctx, ids[i], rec))
					want[i] = cursor.Status{Reply: rec}
				}
			}
		}
		require.NoError(t, l.MarkDone(ctx, marked...))
	})
	require.Equal(t, want, lookup(t, h.State, "wk", ids...))
	marks, err := h.State.Done(ctx, "wk", ids...)
	require.NoError(t, err)
	for i, ok := range marks {
		require.Equal(t, want[i].Done, ok, ids[i])
	}
}

func testLookupInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range badMsgIDArgs {
		got, err := h.State.Lookup(ctx, tc.key, tc.ids...)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, tc.name)
		require.Nil(t, got, tc.name)
	}
}

// A reply record is kept for the retention after its last PutReply, then dropped.
func testReplyExpiry(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	r := h.Retention
	put := func(ids ...string) {
		withLease(t, h, "wk", func(l cursor.Lease) {
			for _, id := range ids {
				require.NoError(t, l.PutReply(ctx, id, []byte("r-"+id)))
			}
		})
	}
	put("old", "refreshed")
	h.Advance(r / 2)
	require.Equal(t, []cursor.Status{reply("r-old"), reply("r-refreshed")},
		lookup(t, h.State, "wk", "old", "refreshed"), "kept for half the retention")
	put("young", "refreshed")
	h.Advance(r/2 + r/4)
	require.Equal(t, []cursor.Status{{}, reply("r-young"), reply("r-refreshed")},
		lookup(t, h.State, "wk", "old", "young", "refreshed"), "dropped after the retention, kept before")
	h.Advance(r / 2)
	require.Equal(t, []cursor.Status{{}, {}, {}}, lookup(t, h.State, "wk", "old", "young", "refreshed"))
	put("old")
	require.Equal(t, []cursor.Status{reply("r-old")}, lookup(t, h.State, "wk", "old"), "an expired record can be put again")
}

func testAccounts(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	s := h.State
	got, err := s.Accounts(ctx)
	require.NoError(t, err)
	require.Empty(t, got)

	require.NoError(t, s.Save(ctx, "wkStore", "c"))
	withLease(t, h, "wkLease", func(l cursor.Lease) { require.NoError(t, l.Save(ctx, "c")) })
	withLease(t, h, "wkMeta", func(l cursor.Lease) { require.NoError(t, l.SetMeta(ctx, "history_before", "1")) })
	withLease(t, h, "wkBoth", func(l cursor.Lease) {
		require.NoError(t, l.Save(ctx, "c"))
		require.NoError(t, l.SetMeta(ctx, "history_before", "1"))
		require.NoError(t, l.SetMeta(ctx, "other", "2"))
	})
	withLease(t, h, "wk账号", func(l cursor.Lease) { require.NoError(t, l.Save(ctx, "c")) })
	want := []string{"wkStore", "wkLease", "wkMeta", "wkBoth", "wk账号"}
	got, err = s.Accounts(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, want, got, "each account once")

	if h.Reopen != nil {
		h2 := h.reopen()
		got, err = h2.State.Accounts(ctx)
		require.NoError(t, err)
		require.ElementsMatch(t, want, got, "accounts are durable")
	}
}

func testStateContextCanceled(t *testing.T, h *Harness) {
	l := lock(t, h, "wk", ttl)
	defer func() { require.NoError(t, l.Release(ctxT(t))) }()
	require.NoError(t, l.Save(ctxT(t), "saved"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := h.State
	_, err := s.Accounts(ctx)
	require.ErrorIs(t, err, context.Canceled)
	meta, err := s.LoadMeta(ctx, "wk", "n")
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, meta)
	st, err := s.Lookup(ctx, "wk", "m")
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, st)
	require.ErrorIs(t, l.Save(ctx, "other"), context.Canceled)
	require.ErrorIs(t, l.SetMeta(ctx, "n", "v"), context.Canceled)
	require.ErrorIs(t, l.MarkDone(ctx, "m"), context.Canceled)
	require.ErrorIs(t, l.PutReply(ctx, "m", []byte("r")), context.Canceled)
	require.NoError(t, l.Err(), "a cancelled write does not end the lease")

	got, err := s.Load(ctxT(t), "wk")
	require.NoError(t, err)
	require.Equal(t, "saved", got)
	require.Equal(t, []cursor.Status{{}}, lookup(t, s, "wk", "m"))
}

// Everything written through a lease survives a reopen: the cursor, metadata, done marks and reply records.
func testStateDurable(t *testing.T, h *Harness) {
	if h.Reopen == nil {
		return
	}
	ctx := ctxT(t)
	withLease(t, h, "wk", func(l cursor.Lease) {
		require.NoError(t, l.Save(ctx, "c1"))
		require.NoError(t, l.SetMeta(ctx, "history_before", "1741944413"))
		require.NoError(t, l.PutReply(ctx, "m1", []byte("r1")))
		require.NoError(t, l.PutReply(ctx, "m2", []byte("r2")))
		require.NoError(t, l.PutReply(ctx, "m2", []byte("r2 again")))
		require.NoError(t, l.PutReply(ctx, "m3", []byte("r3")))
		require.NoError(t, l.MarkDone(ctx, "m3"))
	})
	check := func(s cursor.State) {
		t.Helper()
		requireSaved(t, s, "wk", "c1", "history_before", "1741944413")
		require.Equal(t, []cursor.Status{reply("r1"), reply("r2 again"), done, {}},
			lookup(t, s, "wk", "m1", "m2", "m3", "m4"))
	}
	h2 := h.reopen()
	check(h2.State)
	l := lock(t, h2, "wk", ttl)
	require.NoError(t, l.MarkDone(ctx, "m1"))
	require.NoError(t, l.Release(ctx))
	h3 := h2.reopen()
	require.Equal(t, []cursor.Status{done, reply("r2 again")}, lookup(t, h3.State, "wk", "m1", "m2"))
}
