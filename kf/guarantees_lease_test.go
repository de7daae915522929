package kf

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf/kftest"
)

// clockLostLease reports itself lost (Err) once lost is set, while the store still takes its
// writes and Done stays open: the moment a paused process resumes, its lease expired by its own
// clock, before its renewer or the store has noticed. Only the checks a replica makes itself then
// keep it from acting.
type clockLostLease struct {
	cursor.Lease
	lost *atomic.Bool
}

func (l clockLostLease) Err() error {
	if l.lost.Load() {
		return cursor.ErrLeaseLost
	}
	return l.Lease.Err()
}

// A replica checks its lease before it starts each handler and before each send: once the lease
// is lost by its own clock, no queued message starts and the running handler's reply is not sent,
// even though nothing else (the store, the renewer) has told it yet.
func TestNoHandlerStartsOnceTheLeaseIsLost(t *testing.T) {
	t.Parallel()
	var lost atomic.Bool
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	clockLost := func(l cursor.Lease) cursor.Lease { return clockLostLease{l, &lost} }
	e.start(WithStores(wrappedLeases{cursor.NewMemory(), clockLost}), WithWorkers(1), fastRetry)
	started := make(chan string, 16)
	release := make(chan struct{})
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		started <- m.Text.Content
		if m.Text.Content == "first" {
			<-release
		}
		return r.Text(ctx, m.Text.Content)
	})
	// Three customers, one worker: "second" and "third" wait in the queue while "first" runs.
	srv.AddText("a", "first")
	srv.AddText("b", "second")
	srv.AddText("c", "third")
	e.notify()
	select {
	case got := <-started:
		require.Equal(t, "first", got)
	case <-time.After(10 * time.Second):
		t.Fatal("no handler started")
	}
	lost.Store(true)
	close(release)
	select {
	case got := <-started:
		t.Fatalf("%q started after the lease was lost", got)
	case <-time.After(time.Second):
	}
	var sent []string
	for _, m := range srv.Sent() {
		sent = append(sent, m.Text)
	}
	assert.Empty(t, sent, "the running handler's reply is not sent once the lease is lost (checked before the send and again after the rate limiter)")
}
