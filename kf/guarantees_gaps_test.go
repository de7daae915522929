package kf

// Delivery guarantees not covered elsewhere: a 45033 from send_msg reruns the handler, WeCom's
// duplicate-msgid wording is logged once, the pull stops at the msgids-ahead bound, and a rerun
// whose reply record was lost is cut rather than continued.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// WeCom answering send_msg with 45033 (too many concurrent calls) for a while loses nothing: the
// handler runs again, the customer's later messages wait behind it, and once WeCom accepts sends
// every message is answered once, in order, with no new callback.
func TestSend45033IsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry, WithClientOptions(WithRetry(2, time.Millisecond, 5*time.Millisecond)))
	var runs sync.Map // text → *atomic.Int32
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		n, _ := runs.LoadOrStore(m.Text.Content, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		return r.Text(ctx, m.Text.Content)
	})
	runsOf := func(text string) int32 {
		n, ok := runs.Load(text)
		if !ok {
			return 0
		}
		return n.(*atomic.Int32).Load()
	}
	e.srv.FailWith(pathSend, 45033, "api concurrent out of limit")
	want := []string{"one", "two", "three"}
	for _, text := range want {
		e.srv.AddText("ivy", text)
	}
	e.notify()
	e.waitUntil("the handler is rerun while WeCom answers 45033", 10*time.Second, func() bool { return runsOf("one") >= 3 })
	assert.Zero(t, runsOf("two"), "the customer's next message waits behind the retried one")
	assert.Empty(t, e.texts("ivy"))
	s := e.ch.Stats()
	assert.GreaterOrEqual(t, s.Retries, int64(2))
	assert.Positive(t, s.ErrorsByCode[45033])
	assert.Zero(t, s.DeadLetters)

	e.srv.Handle(pathSend, nil) // WeCom accepts sends again
	e.waitTexts("ivy", want, 10*time.Second)
	e.settle()
	s = e.ch.Stats()
	assert.EqualValues(t, 3, s.Handled)
	assert.Zero(t, s.DeadLetters)
	assert.EqualValues(t, 1, s.Callbacks, "no new callback was needed")
}

// The first time WeCom refuses a repeated client msgid, its exact wording is logged (so that an
// operator can see what the Channel took for "already sent"); later duplicates are only counted.
func TestDuplicateWordingLoggedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	answered := make(chan struct{}, 2)
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, m.Text.Content); err != nil {
			return err
		}
		answered <- struct{}{}
		<-ctx.Done() // the process dies before the message is marked done
		return ctx.Err()
	})
	e.srv.AddText("amy", "hello")
	e.srv.AddText("bob", "hi")
	e.notify()
	for range 2 {
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			t.Fatalf("the first run did not answer; stats %+v", e.ch.Stats())
		}
	}
	// Each reply's only message was accepted, but its mark was not stored (the done mark would
	// have ended the record): the rerun sends it again and WeCom refuses the repeat, twice.
	logs := &syncLog{}
	e.crashAndRestart(WithChannelLogger(logs.logger()))
	e.ch.OnMessage(echo)
	e.waitHandled(2)
	assert.EqualValues(t, 2, e.ch.Stats().DuplicateSends)
	assert.Equal(t, []string{"hello"}, e.texts("amy"))
	assert.Equal(t, []string{"hi"}, e.texts("bob"))
	out := logs.String()
	assert.Equal(t, 1, strings.Count(out, "WeCom refused a repeated client msgid"), "logged the first time only:\n%s", out)
	assert.Contains(t, out, `errmsg="invalid parameter: msgid duplicated"`, "WeCom's own wording")
	assert.Contains(t, out, "errcode=40058")
}

// An account stops pulling once it remembers maxAhead msgids ahead of its oldest unfinished
// message, and pulls the rest once handlers finish, in order and without a new callback. The bound
// is checked after each page: with a page size that divides it, exactly the bound is pulled; with
// one that does not, the page that crosses it is kept whole (less than a page more).
func TestPullStopsAtMaxAhead(t *testing.T) {
	t.Parallel()
	const bound, customers, perCustomer = 10, 6, 5
	for _, tc := range []struct{ pageSize, pulled int }{{5, 10}, {4, 12}} {
		t.Run(fmt.Sprintf("page %d", tc.pageSize), func(t *testing.T) {
			t.Parallel()
			srv := kftest.NewServer(kftest.WithPageSize(tc.pageSize))
			t.Cleanup(srv.Close)
			e := &env{t: t, srv: srv, dir: t.TempDir()}
			e.start(withMaxAhead(bound))
			release := make(chan struct{})
			var started atomic.Int32
			e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
				started.Add(1)
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
				return r.Text(ctx, m.Text.Content)
			})
			want := map[string][]string{}
			for i := range customers * perCustomer {
				u := fmt.Sprintf("c%d", i%customers)
				text := fmt.Sprintf("%s-%d", u, i/customers)
				srv.AddText(u, text)
				want[u] = append(want[u], text)
			}
			e.notify()
			e.waitUntil("the bound pulled, a handler per customer started", 10*time.Second, func() bool {
				return e.ch.Stats().Messages >= bound && started.Load() == customers
			})
			pulls := srv.Calls("/cgi-bin/kf/sync_msg")
			time.Sleep(200 * time.Millisecond) // time to pull further, were it allowed to
			s := e.ch.Stats()
			assert.EqualValues(t, tc.pulled, s.Messages, "nothing pulled past the bound while handlers are blocked")
			assert.Equal(t, tc.pulled, s.InFlight)
			assert.EqualValues(t, customers, started.Load(), "one handler per customer runs; the rest wait in order")
			assert.Equal(t, pulls, srv.Calls("/cgi-bin/kf/sync_msg"), "no pull while at the bound")

			close(release)
			for u, w := range want {
				e.waitTexts(u, w, 10*time.Second)
			}
			e.settle()
			s = e.ch.Stats()
			assert.EqualValues(t, customers*perCustomer, s.Messages)
			assert.EqualValues(t, customers*perCustomer, s.Handled)
			assert.EqualValues(t, 1, s.Callbacks, "resumed without a new callback")
		})
	}
}

// A rerun after a crash whose reply record was lost (the Dir store's journal tail lost to a power
// loss) does not continue the earlier, partly sent answer with its own parts: WeCom refuses the
// first part's msgid as a repeat, so the rerun learns that something unknown was sent and sends
// nothing more. The cut is reported: ErrReplySuperseded to the handler, Stats.RepliesSuperseded,
// and a Warn log.
func TestLostReplyRecordIsCut(t *testing.T) {
	t.Parallel()
	e, px, opts := newProxiedEnv(t)
	srv := e.srv
	var firstTag atomic.Value
	var rerun chan error // the restarted process's results
	handler := func(ctx context.Context, m *Message, r Replier) error {
		tag, parts := taggedAnswer(3) // a different answer on every run
		firstTag.CompareAndSwap(nil, tag)
		err := r.Text(ctx, strings.Join(padParts(parts), "")) // one call, three messages
		if rerun != nil {
			select {
			case rerun <- err:
			default: // a further run fails the test below
			}
		}
		return err
	}
	e.ch.OnMessage(handler)
	var sends atomic.Int32
	px.add(func(path string, _ []byte) (int, string, bool) {
		if path == pathSend && sends.Add(1) >= 2 {
			return 502, "bad gateway", true // part 1 went out; WeCom is unreachable from part 2 on
		}
		return 0, "", false
	})
	msgID := srv.AddText("kim", "question")
	e.notify()
	require.Eventually(t, func() bool { return sends.Load() >= 2 }, 5*time.Second, time.Millisecond)
	require.Len(t, e.texts("kim"), 1)

	e.hs.Close()
	e.ch.crash()
	require.True(t, dropReplyRecords(t, filepath.Join(e.dir, "wechatcom_kf_done.jsonl"), msgID),
		"the journal held the reply record")
	px.clear()
	logs := &syncLog{}
	e.start(append(opts, WithChannelLogger(logs.logger()))...)
	rerun = make(chan error, 1) // set before OnMessage starts the new process's handlers
	e.ch.OnMessage(handler)
	select {
	case err := <-rerun:
		assert.ErrorIs(t, err, ErrReplySuperseded, "the rerun is told its answer was not sent")
	case <-time.After(10 * time.Second):
		t.Fatalf("no rerun; stats %+v", e.ch.Stats())
	}
	e.settleWithin(10 * time.Second)
	got := e.texts("kim")
	require.Len(t, got, 1, "nothing sent after the first answer's part 1: %q", got)
	assert.Equal(t, firstTag.Load(), tagOf(got[0]))
	s := e.ch.Stats()
	assert.EqualValues(t, 1, s.RepliesSuperseded)
	assert.EqualValues(t, 1, s.DuplicateSends)
	assert.Zero(t, s.DeadLetters)
	assert.Empty(t, rerun, "the message is done after the cut: no further run")
	assert.Contains(t, logs.String(), "an earlier run's reply was sent but not recorded")
}

// waitUntil waits until cond holds, and fails with the Channel's stats at that moment if it does not
// within the given time.
func (e *env) waitUntil(what string, within time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s; stats %+v", what, within, e.ch.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// dropReplyRecords truncates the done-journal at its first reply record for msgID, as a power
// loss that took the journal's tail would. It reports whether there was one.
func dropReplyRecords(t *testing.T, path, msgID string) bool {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var off int64
	for sc.Scan() {
		var rec struct {
			R string `json:"r"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		if rec.R == msgID {
			require.NoError(t, f.Truncate(off))
			return true
		}
		off += int64(len(sc.Bytes())) + 1
	}
	require.NoError(t, sc.Err())
	return false
}
