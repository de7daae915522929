package kf

import (
	"context"
	"time"

	"github.com/wxkf/wxkf/cursor"
)

// Owed pulls across replicas. On stores shared between processes (cursor.Owed: cursor/redis), a
// replica marks an account owed in the store before it answers a callback, and clears its mark once a
// pull round that started after the mark has completed. Every replica looks, every owedSweepEvery, for
// marks older than owedAge and pulls those accounts: the replica that made the mark died (or shut
// down) before pulling, or is stuck. So a callback answered by a replica that is gone is pulled by
// another within about owedAge + owedSweepEvery, without waiting for a restart or the account's next
// callback.
//
// One process keeps at most one mark per account outstanding: callbacks that come while it is
// outstanding need no new one, since the round that clears it starts after all of them were answered
// or covers them in the round after (they set the account pending). A mark made since by another
// process replaces this one in the store, and the clear leaves it (the store compares marks).

// owedMark is a mark this process made, or found in a sweep, and has not cleared yet.
type owedMark struct {
	mark int64
	at   time.Time // when this process learned of it: a round that starts later covers it
}

const (
	// owedMarkTimeout bounds the mark a callback waits for before it is answered.
	owedMarkTimeout = time.Second
	// owedLeases is owedAge in lease TTLs: a live holder renews its lease every third of the TTL,
	// so a replica that could still pull has done so or is stuck by then.
	owedLeases = 2
	// minOwedSweepEvery bounds how often a replica looks for stale marks.
	minOwedSweepEvery = 100 * time.Millisecond
)

// owedAge is how old a mark must be before other replicas pull its account.
func (ch *Channel) owedAge() time.Duration { return owedLeases * ch.cfg.leaseTTL }

// owedSweepEvery is how often each replica looks for stale marks: one store call each time.
func (ch *Channel) owedSweepEvery() time.Duration {
	return max(ch.cfg.leaseTTL/2, minOwedSweepEvery)
}

// accountOf returns openKfID's account, creating it (idle) if needed.
func (ch *Channel) accountOf(openKfID string) *account {
	ch.accMu.Lock()
	defer ch.accMu.Unlock()
	return ch.accountLocked(openKfID)
}

func (ch *Channel) accountLocked(openKfID string) *account {
	a := ch.accounts[openKfID]
	if a == nil {
		a = &account{ch: ch, id: openKfID, wake: make(chan struct{}, 1)}
		ch.accounts[openKfID] = a
	}
	return a
}

// markOwed records in a shared store that a pull is owed to openKfID, unless this process has a mark
// outstanding for it already. A store error is logged: the callback is still answered, and this
// process pulls as usual (only its death before pulling would then strand the callback).
func (ch *Channel) markOwed(ctx context.Context, openKfID string) {
	owed, ok := ch.stores.(cursor.Owed)
	if !ok || openKfID == "" {
		return
	}
	a := ch.accountOf(openKfID)
	a.mu.Lock()
	if a.owed != nil || a.marking {
		a.mu.Unlock()
		return
	}
	a.marking = true
	a.mu.Unlock()
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), owedMarkTimeout)
	mark, err := owed.MarkOwed(mctx, openKfID)
	cancel()
	a.mu.Lock()
	a.marking = false
	if err == nil {
		a.owed = &owedMark{mark: mark, at: time.Now()}
	}
	a.mu.Unlock()
	if err != nil {
		ch.noteErr("owed mark", err, "open_kfid", openKfID)
	}
}

// covered tells the account that a pull round that started at start has completed: a mark this
// process knew of before then is cleared.
func (a *account) covered(ctx context.Context, start time.Time) {
	owed, ok := a.ch.stores.(cursor.Owed)
	if !ok {
		return
	}
	a.mu.Lock()
	o := a.owed
	if o == nil || !start.After(o.at) {
		a.mu.Unlock()
		return
	}
	a.owed = nil
	a.mu.Unlock()
	if err := owed.ClearOwed(ctx, a.id, o.mark); err != nil {
		// The mark stays: a sweep pulls the account once more, which costs a pull and nothing else.
		a.ch.noteErr("owed clear", err, "open_kfid", a.id)
	}
}

// sweepOwed pulls, every owedSweepEvery, the accounts whose marks are older than owedAge.
func (ch *Channel) sweepOwed() {
	owed, ok := ch.stores.(cursor.Owed)
	if !ok {
		return
	}
	select {
	case <-ch.ready:
	case <-ch.pullCtx.Done():
		return
	}
	t := time.NewTicker(ch.owedSweepEvery())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ch.pullCtx.Done():
			return
		}
		marks, err := owed.OwedOlder(ch.pullCtx, ch.owedAge())
		if err != nil {
			if ch.pullCtx.Err() == nil {
				ch.noteErr("owed sweep", err)
			}
			continue
		}
		for _, m := range marks {
			a := ch.accountOf(m.OpenKfID)
			a.mu.Lock()
			if a.owed == nil || a.owed.mark != m.Mark {
				a.owed = &owedMark{mark: m.Mark, at: time.Now()}
			}
			a.mu.Unlock()
			if !ch.trigger(m.OpenKfID, "", time.Time{}) {
				return
			}
		}
		if len(marks) > 0 {
			ch.stats.owedSwept.Add(int64(len(marks)))
			ch.log.Info("wxkf: pulling accounts whose answered callbacks no replica pulled", "accounts", len(marks))
		}
	}
}
