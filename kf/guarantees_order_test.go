package kf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf/kftest"
)

// markFailLease refuses done marks while fail is set, as a store outage would: the marks stay
// unwritten, and a crash then replays the messages.
type markFailLease struct {
	cursor.Lease
	fail *atomic.Bool
}

func (l markFailLease) MarkDone(ctx context.Context, ids ...string) error {
	if l.fail.Load() {
		return errors.New("store unreachable")
	}
	return l.Lease.MarkDone(ctx, ids...)
}

// startMarkOutage starts a Channel running h on a file store whose done marks fail (a store
// outage). The returned func crashes it and restarts it on the same directory with working marks.
func startMarkOutage(t *testing.T, h Handler) (e *env, crashAndRecover func()) {
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	e = &env{t: t, srv: srv, dir: t.TempDir()}
	var fail atomic.Bool
	start := func() func() {
		d, err := cursor.OpenDir(e.dir)
		require.NoError(t, err)
		e.start(WithStores(wrappedLeases{d, func(l cursor.Lease) cursor.Lease { return markFailLease{l, &fail} }}))
		e.ch.OnMessage(h)
		return func() { _ = d.Close() }
	}
	fail.Store(true)
	closeStore := start()
	return e, func() {
		e.hs.Close()
		e.ch.crash()
		closeStore()
		fail.Store(false)
		t.Cleanup(start())
	}
}

// A customer's next message starts only once the done mark of their previous one is written, so a
// replay after a crash never answers an earlier message after a later one. Here the earlier
// message's sixth reply was refused by WeCom's 5-message rule, and the marks cannot be written (a
// store outage): the customer's next message waits; after a crash and a restart on a working
// store, the replay refuses the sixth reply again and answers the next message after it.
func TestReplayNeverSendsARefusedReplyLate(t *testing.T) {
	t.Parallel()
	handler := func(ctx context.Context, m *Message, r Replier) error {
		n := 1
		if m.Text.Content == "first" {
			n = 6 // one more than WeCom allows: the sixth is refused
		}
		for i := range n {
			if err := r.Text(ctx, fmt.Sprintf("%s #%d", m.Text.Content, i+1)); err != nil {
				if errors.Is(err, ErrQuotaExceeded) {
					return nil // decided: the customer gets five
				}
				return err
			}
		}
		return nil
	}
	e, crashAndRecover := startMarkOutage(t, handler)
	e.srv.AddText("ann", "first")
	e.notify()
	require.Eventually(t, func() bool { return len(e.texts("ann")) == 5 }, 5*time.Second, 5*time.Millisecond)
	// WeCom's send_time has 1-second resolution; the quota book counts a send in the same second as
	// the customer's next message against the newer window. Let that second pass.
	time.Sleep(1100 * time.Millisecond)
	e.srv.AddText("ann", "second")
	e.notify()
	time.Sleep(300 * time.Millisecond)
	require.Len(t, e.texts("ann"), 5, "the next message waits for the earlier one's done mark")

	crashAndRecover() // with the done mark unwritten
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // anything late would show now
	got := e.texts("ann")
	require.Equal(t, []string{"first #1", "first #2", "first #3", "first #4", "first #5"}, got[:5])
	// The restarted process cannot tell when the replayed sends went out, so it counts them against
	// the customer's newest window (never a 95001, at the cost of a slot): "second" may be refused.
	require.LessOrEqual(t, len(got), 6)
	if len(got) == 6 {
		require.Equal(t, "second #1", got[5])
	}
	for _, r := range e.srv.Rejected() {
		require.NotEqual(t, 95001, r.Code, "never a 95001")
	}
}

// The same when a human servicer had the session (95018) for the earlier message: the customer's
// next message, after the session came back to the bot, waits for the earlier one's done mark; the
// replay after a crash answers the earlier message first (the bot has the session now), then the
// next one: in order.
func TestReplayNeverSendsAReplyRefusedByState(t *testing.T) {
	t.Parallel()
	handler := func(ctx context.Context, m *Message, r Replier) error {
		if err := r.Text(ctx, "re: "+m.Text.Content); err != nil && !isReplyOutcome(err) {
			return err
		}
		return nil
	}
	e, crashAndRecover := startMarkOutage(t, handler)
	srv := e.srv
	kfid := srv.OpenKfID()
	srv.AddText("bea", "first")
	srv.SetServiceState(kfid, "bea", kftest.StateServicer, "zhangsan")
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().ErrorsByCode[95018] > 0 }, 5*time.Second, 5*time.Millisecond)
	require.Empty(t, e.texts("bea"), "a human has the session")
	srv.SetServiceState(kfid, "bea", 1, "") // back to the bot (state 1), with no event
	time.Sleep(1100 * time.Millisecond)
	srv.AddText("bea", "second")
	e.notify()
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, e.texts("bea"), "the next message waits for the earlier one's done mark")

	crashAndRecover()
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 2 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, []string{"re: first", "re: second"}, e.texts("bea"))
}
