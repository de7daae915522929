// Package cursortest is the conformance suite for implementations of cursor.State (and of its parts
// cursor.Store, cursor.Locker and cursor.Dedup): run it from a test with a Factory that builds a fresh
// instance, and every implementation is held to the same contract (round trips, concurrent writers, lease
// expiry and takeover, Dedup retention, and for a State: metadata, reply records, Lookup, Accounts, fencing
// tokens and fenced writes refused after a takeover or a release).
//
//	func TestConformance(t *testing.T) {
//		cursortest.Run(t, func(t *testing.T) *cursortest.Harness {
//			clock := cursortest.NewClock(time.Now())
//			m := cursor.NewMemory(cursor.WithClock(clock.Now))
//			t.Cleanup(func() { m.Close() })
//			return &cursortest.Harness{State: m, Retention: cursor.DefaultRetention,
//				Advance: clock.Advance, ExpireLease: func(string) { clock.Advance(24 * time.Hour) }}
//		})
//	}
package cursortest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
)

// Harness is one fresh instance of an implementation under test plus the hooks the suite needs.
type Harness struct {
	// State is the instance as a cursor.State. Store, Locker and Dedup default to it; the tests of metadata,
	// reply records, Lookup, Accounts and of the Lease's Key, Token and fenced writes run only when it is set
	// (an implementation of the parts alone leaves it nil and sets Store, Locker and Dedup).
	State cursor.State

	Store  cursor.Store
	Locker cursor.Locker
	Dedup  cursor.Dedup

	// Retention is the Dedup retention the instance was built with. The suite checks that a mark is kept for
	// Retention/2 and gone after 1.25×Retention. Keep it short (a few seconds) when Advance really sleeps.
	Retention time.Duration

	// Advance makes d pass as far as Dedup retention and lease expiry are concerned: a fake clock's step, or
	// a real sleep for implementations that keep time elsewhere (Redis TTLs).
	Advance func(d time.Duration)

	// ExpireLease makes the lease currently held on key expire as if its holder had stalled for longer than
	// the ttl (advance a fake clock past it, delete the Redis key…). The holder's next renewal must fail.
	ExpireLease func(key string)

	// Reopen, if not nil, closes this instance and returns a new one over the same durable state (the same
	// directory, the same Redis). Leave it nil for implementations without durable state.
	Reopen func() *Harness

	// StallRenewals, if not nil, keeps the renewers of this instance's leases from completing a renewal until
	// resume is called (a renewal in flight waits; it then runs as it would have). The suite uses it to check
	// that Lease.Err reports the loss at the lease's deadline by itself, without help from the renewer.
	// Leave it nil when Advance moves the clock the leases read (cursor.WithClock): a fake clock jumps past
	// the deadline before the renewer, which ticks in real time, can run.
	StallRenewals func() (resume func())
}

// fill defaults Store, Locker and Dedup to State.
func (h *Harness) fill() {
	if h.State == nil {
		return
	}
	if h.Store == nil {
		h.Store = h.State
	}
	if h.Locker == nil {
		h.Locker = h.State
	}
	if h.Dedup == nil {
		h.Dedup = h.State
	}
}

// Factory returns a fresh, empty instance for one subtest; it registers its own cleanup with t.
type Factory func(t *testing.T) *Harness

// Clock is a manual clock for cursor.WithClock: Now returns the time it was set to, plus every Advance.
// Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Lease ttls used by the suite: short enough that renewal and loss happen within a test, long enough for a
// loaded CI machine running -race.
const (
	shortTTL = time.Second
	ttl      = 2 * time.Second
	patience = 10 * time.Second // how long the suite waits for something that must happen
)

// test is one test of the suite. A state test runs only when Harness.State is set.
type test struct {
	name  string
	fn    func(t *testing.T, h *Harness)
	state bool
}

// Run runs the conformance suite as parallel subtests of t, each with a fresh instance from newHarness.
func Run(t *testing.T, newHarness Factory) {
	t.Helper()
	tests := []test{
		{name: "Store/LoadMissing", fn: testLoadMissing},
		{name: "Store/RoundTrip", fn: testRoundTrip},
		{name: "Store/Isolation", fn: testStoreIsolation},
		{name: "Store/InvalidArgument", fn: testStoreInvalid},
		{name: "Store/ContextCanceled", fn: testContextCanceled},
		{name: "Store/ConcurrentWriters", fn: testConcurrentWriters},
		{name: "Store/Durable", fn: testStoreDurable},
		{name: "Dedup/Basic", fn: testDedupBasic},
		{name: "Dedup/PerAccount", fn: testDedupPerAccount},
		{name: "Dedup/Batch1000", fn: testDedupBatch},
		{name: "Dedup/Expiry", fn: testDedupExpiry},
		{name: "Dedup/InvalidArgument", fn: testDedupInvalid},
		{name: "Dedup/Concurrent", fn: testDedupConcurrent},
		{name: "Dedup/Durable", fn: testDedupDurable},
		{name: "Lock/Exclusive", fn: testLockExclusive},
		{name: "Lock/ReleaseHandsOver", fn: testLockReleaseHandsOver},
		{name: "Lock/RenewalKeepsLease", fn: testLockRenewal},
		{name: "Lock/ExpiryAndTakeover", fn: testLockTakeover},
		{name: "Lock/ContextCanceledWhileWaiting", fn: testLockCtxCanceled},
		{name: "Lock/MutualExclusion", fn: testLockMutualExclusion},
		{name: "Lock/InvalidArgument", fn: testLockInvalid},
	}
	for _, tc := range append(tests, stateTests...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			require.NotNil(t, h)
			if tc.state && h.State == nil {
				t.Skip("Harness.State is nil: the implementation is not a cursor.State")
			}
			h.fill()
			require.NotNil(t, h.Store)
			require.NotNil(t, h.Locker)
			require.NotNil(t, h.Dedup)
			require.NotNil(t, h.Advance)
			require.NotNil(t, h.ExpireLease)
			require.Positive(t, h.Retention)
			tc.fn(t, h)
		})
	}
}

// reopen is h.Reopen with the defaults filled in.
func (h *Harness) reopen() *Harness {
	h2 := h.Reopen()
	h2.fill()
	return h2
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	t.Cleanup(cancel)
	return ctx
}

func testLoadMissing(t *testing.T, h *Harness) {
	got, err := h.Store.Load(ctxT(t), "wk_never_saved")
	require.NoError(t, err)
	require.Empty(t, got)
}

func testRoundTrip(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range []struct{ name, cursor string }{
		{"typical", "4gw7MepFLfgF2VC5npN"},
		{"64 bytes (WeCom max)", strings.Repeat("c", 64)},
		{"max length", strings.Repeat("x", cursor.MaxCursorLen)},
		{"non-ASCII", "游标-カーソル-😀"},
		{"JSON metacharacters", "a\"b\\c\nd\te/\u2028<>&"},
		{"empty is none", ""},
	} {
		require.NoError(t, h.Store.Save(ctx, "wk_round_trip", tc.cursor), tc.name)
		got, err := h.Store.Load(ctx, "wk_round_trip")
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.cursor, got, tc.name)
	}
	// A non-ASCII account id round-trips too.
	require.NoError(t, h.Store.Save(ctx, "wk账号", "c1"))
	got, err := h.Store.Load(ctx, "wk账号")
	require.NoError(t, err)
	require.Equal(t, "c1", got)
}

func testStoreIsolation(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	require.NoError(t, h.Store.Save(ctx, "wkA", "cursor-a"))
	require.NoError(t, h.Store.Save(ctx, "wkB", "cursor-b"))
	require.NoError(t, h.Store.Save(ctx, "wkA", "cursor-a2"))
	for key, want := range map[string]string{"wkA": "cursor-a2", "wkB": "cursor-b", "wkC": ""} {
		got, err := h.Store.Load(ctx, key)
		require.NoError(t, err)
		require.Equal(t, want, got, key)
	}
}

func testStoreInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name        string
		key, cursor string
	}{
		{"empty open_kfid", "", "c"},
		{"over-long open_kfid", strings.Repeat("k", cursor.MaxKeyLen+1), "c"},
		{"invalid UTF-8 open_kfid", "wk\xff", "c"},
		{"over-long cursor", "wk", strings.Repeat("c", cursor.MaxCursorLen+1)},
		{"invalid UTF-8 cursor", "wk", "c\xfe"},
	} {
		err := h.Store.Save(ctx, tc.key, tc.cursor)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, tc.name)
	}
	_, err := h.Store.Load(ctx, "")
	require.ErrorIs(t, err, cursor.ErrInvalidArgument)
	got, err := h.Store.Load(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got, "a rejected Save must not store anything")
}

// A failed call is an error, never an empty answer: a cancelled context must not read as "no cursor".
func testContextCanceled(t *testing.T, h *Harness) {
	require.NoError(t, h.Store.Save(ctxT(t), "wk", "saved"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := h.Store.Load(ctx, "wk")
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, got)
	require.ErrorIs(t, h.Store.Save(ctx, "wk", "other"), context.Canceled)
	require.ErrorIs(t, h.Dedup.MarkDone(ctx, "wk", "m1"), context.Canceled)
	done, err := h.Dedup.Done(ctx, "wk", "m1")
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, done)
	lease, err := h.Locker.Lock(ctx, "wk", ttl)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, lease)

	got, err = h.Store.Load(ctxT(t), "wk")
	require.NoError(t, err)
	require.Equal(t, "saved", got)
}

func testConcurrentWriters(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	const writers, saves = 8, 25
	written := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range saves {
				own := fmt.Sprintf("w%d-%d", w, i)
				shared := fmt.Sprintf("shared-w%d-%d", w, i)
				mu.Lock()
				written[shared] = true
				mu.Unlock()
				assert.NoError(t, h.Store.Save(ctx, fmt.Sprintf("wk_own_%d", w), own))
				assert.NoError(t, h.Store.Save(ctx, "wk_shared", shared))
				got, err := h.Store.Load(ctx, fmt.Sprintf("wk_own_%d", w))
				assert.NoError(t, err)
				assert.Equal(t, own, got, "a writer must read back its own last save")
			}
		})
	}
	wg.Wait()
	check := func(s cursor.Store) {
		for w := range writers {
			got, err := s.Load(ctx, fmt.Sprintf("wk_own_%d", w))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("w%d-%d", w, saves-1), got)
		}
		got, err := s.Load(ctx, "wk_shared")
		require.NoError(t, err)
		require.True(t, written[got], "shared cursor %q must be one of the values written", got)
	}
	check(h.Store)
	if h.Reopen != nil {
		before, err := h.Store.Load(ctx, "wk_shared")
		require.NoError(t, err)
		h2 := h.reopen()
		check(h2.Store)
		after, err := h2.Store.Load(ctx, "wk_shared")
		require.NoError(t, err)
		require.Equal(t, before, after, "the durable value must be the last one saved")
	}
}

func testStoreDurable(t *testing.T, h *Harness) {
	if h.Reopen == nil {
		// Nothing durable to check: the in-memory round trip is covered by Store/RoundTrip.
		return
	}
	ctx := ctxT(t)
	require.NoError(t, h.Store.Save(ctx, "wkA", "first"))
	require.NoError(t, h.Store.Save(ctx, "wkA", "second"))
	require.NoError(t, h.Store.Save(ctx, "wkB", "游标"))
	h2 := h.reopen()
	for key, want := range map[string]string{"wkA": "second", "wkB": "游标", "wkC": ""} {
		got, err := h2.Store.Load(ctx, key)
		require.NoError(t, err)
		require.Equal(t, want, got, key)
	}
}

func testDedupBasic(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	got, err := h.Dedup.Done(ctx, "wk", "m1", "m2")
	require.NoError(t, err)
	require.Equal(t, []bool{false, false}, got)

	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "m1", "m3"))
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "m1")) // marking again is fine
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk"))       // nothing to mark is fine

	got, err = h.Dedup.Done(ctx, "wk", "m1", "m2", "m3", "m1", "M1")
	require.NoError(t, err)
	require.Equal(t, []bool{true, false, true, true, false}, got)

	got, err = h.Dedup.Done(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got)

	long := strings.Repeat("m", cursor.MaxMsgIDLen)
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", long, "消息😀"))
	got, err = h.Dedup.Done(ctx, "wk", long, "消息😀")
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, got)
}

func testDedupPerAccount(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	require.NoError(t, h.Dedup.MarkDone(ctx, "wkA", "m1"))
	got, err := h.Dedup.Done(ctx, "wkB", "m1")
	require.NoError(t, err)
	require.Equal(t, []bool{false}, got)
	got, err = h.Dedup.Done(ctx, "wkA", "m1")
	require.NoError(t, err)
	require.Equal(t, []bool{true}, got)
}

func testDedupBatch(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	marked := make([]string, 1000)
	for i := range marked {
		marked[i] = fmt.Sprintf("msg-%04d", 2*i)
	}
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", marked...))
	query := make([]string, 2000)
	want := make([]bool, 2000)
	for i := range query {
		query[i] = fmt.Sprintf("msg-%04d", i)
		want[i] = i%2 == 0
	}
	got, err := h.Dedup.Done(ctx, "wk", query...)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func testDedupExpiry(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	r := h.Retention
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "old", "refreshed"))
	h.Advance(r / 2)
	got, err := h.Dedup.Done(ctx, "wk", "old", "refreshed")
	require.NoError(t, err)
	require.Equal(t, []bool{true, true}, got, "kept for half the retention")

	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "young", "refreshed"))
	h.Advance(r/2 + r/4)
	// old: 1.25r; young and refreshed: 0.75r since their last mark.
	got, err = h.Dedup.Done(ctx, "wk", "old", "young", "refreshed")
	require.NoError(t, err)
	require.Equal(t, []bool{false, true, true}, got, "dropped after the retention, kept before")

	h.Advance(r / 2)
	got, err = h.Dedup.Done(ctx, "wk", "old", "young", "refreshed")
	require.NoError(t, err)
	require.Equal(t, []bool{false, false, false}, got)

	// An expired msgid can be marked again.
	require.NoError(t, h.Dedup.MarkDone(ctx, "wk", "old"))
	got, err = h.Dedup.Done(ctx, "wk", "old")
	require.NoError(t, err)
	require.Equal(t, []bool{true}, got)
}

// badMsgIDArgs are invalid arguments of MarkDone, Done and Lookup.
var badMsgIDArgs = []struct {
	name string
	key  string
	ids  []string
}{
	{"empty open_kfid", "", []string{"m"}},
	{"over-long open_kfid", strings.Repeat("k", cursor.MaxKeyLen+1), []string{"m"}},
	{"empty msgid", "wk", []string{"m", ""}},
	{"over-long msgid", "wk", []string{strings.Repeat("m", cursor.MaxMsgIDLen+1)}},
	{"invalid UTF-8 msgid", "wk", []string{"m\xff"}},
}

func testDedupInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range badMsgIDArgs {
		require.ErrorIs(t, h.Dedup.MarkDone(ctx, tc.key, tc.ids...), cursor.ErrInvalidArgument, tc.name)
		got, err := h.Dedup.Done(ctx, tc.key, tc.ids...)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, tc.name)
		require.Nil(t, got, tc.name)
	}
	got, err := h.Dedup.Done(ctx, "wk", "m")
	require.NoError(t, err)
	require.Equal(t, []bool{false}, got, "a rejected MarkDone must mark nothing")
}

func testDedupConcurrent(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	const workers, per = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("w%d-m%d", w, i)
				assert.NoError(t, h.Dedup.MarkDone(ctx, "wk", id))
				got, err := h.Dedup.Done(ctx, "wk", id)
				assert.NoError(t, err)
				assert.Equal(t, []bool{true}, got)
			}
		})
	}
	wg.Wait()
	var all []string
	for w := range workers {
		for i := range per {
			all = append(all, fmt.Sprintf("w%d-m%d", w, i))
		}
	}
	got, err := h.Dedup.Done(ctx, "wk", all...)
	require.NoError(t, err)
	for i, ok := range got {
		require.True(t, ok, all[i])
	}
}

func testDedupDurable(t *testing.T, h *Harness) {
	if h.Reopen == nil {
		return
	}
	ctx := ctxT(t)
	require.NoError(t, h.Dedup.MarkDone(ctx, "wkA", "m1", "m2"))
	require.NoError(t, h.Dedup.MarkDone(ctx, "wkB", "m3"))
	h2 := h.reopen()
	got, err := h2.Dedup.Done(ctx, "wkA", "m1", "m2", "m3")
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, got)
	got, err = h2.Dedup.Done(ctx, "wkB", "m3")
	require.NoError(t, err)
	require.Equal(t, []bool{true}, got)
}

// tryLock attempts to take key within d and reports whether it did (releasing it at once).
func tryLock(t *testing.T, l cursor.Locker, key string, d time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lease, err := l.Lock(ctx, key, ttl)
	if err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded)
		return false
	}
	require.NoError(t, lease.Release(context.Background()))
	return true
}

func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func testLockExclusive(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l1, err := h.Locker.Lock(ctx, "wk", ttl)
	require.NoError(t, err)
	require.NoError(t, l1.Err())
	require.False(t, isClosed(l1.Done()))

	require.False(t, tryLock(t, h.Locker, "wk", 200*time.Millisecond), "a held key must not be taken")
	require.True(t, tryLock(t, h.Locker, "wk_other", patience), "other keys are independent")
	require.NoError(t, l1.Err())
	require.NoError(t, l1.Release(ctx))
}

func testLockReleaseHandsOver(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l1, err := h.Locker.Lock(ctx, "wk", ttl)
	require.NoError(t, err)

	got := make(chan cursor.Lease, 1)
	go func() {
		l2, err := h.Locker.Lock(ctx, "wk", ttl)
		assert.NoError(t, err)
		got <- l2
	}()
	select {
	case <-got:
		t.Fatal("a waiter took a held lease")
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, l1.Release(ctx))
	require.ErrorIs(t, l1.Err(), cursor.ErrReleased)
	require.True(t, isClosed(l1.Done()), "Done is closed by Release")
	require.NoError(t, l1.Release(ctx), "Release is idempotent")

	var l2 cursor.Lease
	select {
	case l2 = <-got:
	case <-time.After(patience):
		t.Fatal("the waiter did not get the released lease")
	}
	require.NotNil(t, l2)
	require.NoError(t, l2.Err())
	require.NoError(t, l2.Release(ctx))
}

func testLockRenewal(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l, err := h.Locker.Lock(ctx, "wk", shortTTL)
	require.NoError(t, err)
	time.Sleep(3 * shortTTL) // would have expired twice over without renewal
	require.NoError(t, l.Err())
	require.False(t, isClosed(l.Done()))
	require.False(t, tryLock(t, h.Locker, "wk", shortTTL/2), "a renewed lease must stay held")
	require.NoError(t, l.Release(ctx))
	require.True(t, tryLock(t, h.Locker, "wk", patience))
}

func testLockTakeover(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	old, err := h.Locker.Lock(ctx, "wk", shortTTL)
	require.NoError(t, err)
	h.ExpireLease("wk")

	lockCtx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	cur, err := h.Locker.Lock(lockCtx, "wk", ttl)
	require.NoError(t, err, "an expired lease must be taken over")

	require.True(t, closedWithin(old.Done(), patience), "the old holder must see the loss")
	require.ErrorIs(t, old.Err(), cursor.ErrLeaseLost)
	require.ErrorIs(t, old.Release(ctx), cursor.ErrLeaseLost, "releasing a lost lease reports the loss")
	require.ErrorIs(t, old.Err(), cursor.ErrLeaseLost)

	// The old holder's Release must not have freed the new holder's lease.
	require.NoError(t, cur.Err())
	require.False(t, tryLock(t, h.Locker, "wk", 200*time.Millisecond))
	require.NoError(t, cur.Release(ctx))
	require.True(t, tryLock(t, h.Locker, "wk", patience))
}

func testLockCtxCanceled(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	l, err := h.Locker.Lock(ctx, "wk", ttl)
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	l2, err := h.Locker.Lock(wctx, "wk", ttl)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, l2)
	require.Less(t, time.Since(start), patience/2, "Lock must return soon after ctx ends")
	require.NoError(t, l.Err())
	require.NoError(t, l.Release(ctx))
}

func testLockMutualExclusion(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	const workers, rounds = 6, 5
	var inside, maxInside, total atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				l, err := h.Locker.Lock(ctx, "wk", ttl)
				if !assert.NoError(t, err) {
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				total.Add(1)
				time.Sleep(2 * time.Millisecond)
				assert.NoError(t, l.Err())
				inside.Add(-1)
				assert.NoError(t, l.Release(ctx))
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), maxInside.Load(), "two holders at once")
	require.Equal(t, int32(workers*rounds), total.Load())
}

func testLockInvalid(t *testing.T, h *Harness) {
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"empty key", "", ttl},
		{"over-long key", strings.Repeat("k", cursor.MaxKeyLen+1), ttl},
		{"zero ttl", "wk", 0},
		{"negative ttl", "wk", -time.Second},
		{"sub-millisecond ttl", "wk", time.Microsecond},
	} {
		l, err := h.Locker.Lock(ctx, tc.key, tc.ttl)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, tc.name)
		require.Nil(t, l, tc.name)
	}
}
