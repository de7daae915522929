package cursor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// leaseTable is the in-process Locker behind Memory and Dir. A Dir is the only user of its directory (flock),
// so leases between goroutines of this process are all that is needed; they follow the same model as the Redis
// leases (ttl, renewal every ttl/3, loss on expiry or takeover) so that one conformance suite covers both.
type leaseTable struct {
	now    func() time.Time
	logger *slog.Logger
	w      fencedWriter // the store whose writes the leases fence

	mu     sync.Mutex
	held   map[string]*localLease
	tokens map[string]uint64        // the last fencing token handed out per key
	wake   map[string]chan struct{} // closed when the key is freed, to wake waiting Lock calls
	closed bool
	wg     sync.WaitGroup // renewers
}

// fencedWriter is what Memory and Dir give their lease table: the writes a lease makes. Each checks
// l.fence under the lock that orders writes of its kind, and writes only if the lease still holds its key.
// A takeover may happen right after the check, but the new holder's writes of the same kind wait for that
// lock, so a stale write can land before the new holder's, never after. The arguments are already checked.
type fencedWriter interface {
	// setFenced stores value under key (the lease's key, or a metadata key of it) in the cursor map.
	setFenced(l *localLease, op, key, value string) error
	markDoneFenced(l *localLease, msgIDs []string) error
	putReplyFenced(l *localLease, msgID string, rec []byte) error
}

func newLeaseTable(now func() time.Time, logger *slog.Logger, w fencedWriter) *leaseTable {
	return &leaseTable{
		now:    now,
		logger: logger,
		w:      w,
		held:   make(map[string]*localLease),
		tokens: make(map[string]uint64),
		wake:   make(map[string]chan struct{}),
	}
}

// localPoll is the mean wait between two acquisition attempts on a held key: waiters are woken at once when
// the key is released, so polling only matters for noticing that a stalled holder's lease expired.
const localPoll = 10 * time.Millisecond

func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: lease ttl %v is below 1ms", ErrInvalidArgument, ttl)
	}
	return nil
}

func (t *leaseTable) lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if err := checkKey("lease key", key); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		now := t.now()
		cur := t.held[key]
		if cur != nil && !now.Before(cur.expires) {
			// The holder stopped renewing (or the clock jumped): take over, and tell it.
			cur.endLocked(ErrLeaseLost)
			t.logger.Warn("cursor: lease expired and taken over", "key", key)
			cur = nil
		}
		if cur == nil {
			t.tokens[key]++
			l := &localLease{
				t:       t,
				key:     key,
				token:   t.tokens[key],
				ttl:     ttl,
				expires: now.Add(ttl),
				done:    make(chan struct{}),
				stop:    make(chan struct{}),
				stopped: make(chan struct{}),
			}
			t.held[key] = l
			t.wg.Add(1)
			go l.renew()
			t.mu.Unlock()
			return l, nil
		}
		ch := t.wake[key]
		if ch == nil {
			ch = make(chan struct{})
			t.wake[key] = ch
		}
		t.mu.Unlock()

		timer := time.NewTimer(jitter(localPoll))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// close ends every lease (they report ErrLeaseLost: nothing may be saved through a closed store) and waits
// for their renewers.
func (t *leaseTable) close() {
	t.mu.Lock()
	t.closed = true
	for _, l := range t.held {
		l.endLocked(ErrLeaseLost)
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// jitter returns a duration uniformly spread over [d/2, 3d/2), so that waiters do not poll in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d)
}

type localLease struct {
	t       *leaseTable
	key     string
	token   uint64
	ttl     time.Duration
	expires time.Time // guarded by t.mu
	err     error     // guarded by t.mu; nil while held
	done    chan struct{}
	stop    chan struct{} // closed with done; stops the renewer
	stopped chan struct{} // closed when the renewer has returned
}

func (l *localLease) Done() <-chan struct{} { return l.done }

// Err implements [Lease]: the renewer's verdict, or ErrLeaseLost once the table's clock reached the deadline.
func (l *localLease) Err() error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	return l.errLocked()
}

// errLocked is Err with t.mu held.
func (l *localLease) errLocked() error {
	if l.err != nil {
		return l.err
	}
	if !l.t.now().Before(l.expires) {
		return ErrLeaseLost
	}
	return nil
}

// Release implements [Lease]. A lease found past its deadline is lost, not released.
func (l *localLease) Release(context.Context) error {
	t := l.t
	t.mu.Lock()
	prev := l.errLocked()
	if prev == nil {
		l.endLocked(ErrReleased)
	} else {
		l.endLocked(prev)
	}
	t.mu.Unlock()
	<-l.stopped
	if prev == ErrLeaseLost {
		return fmt.Errorf("cursor: release lease %q: %w", l.key, ErrLeaseLost)
	}
	return nil
}

// Key implements [Lease].
func (l *localLease) Key() string { return l.key }

// Token implements [Lease]: the count of Lock calls that got this key from this table, this one included.
func (l *localLease) Token() uint64 { return l.token }

// fence returns nil if l still holds its key: not ended, not past its deadline, and the table's current
// holding of the key. Otherwise it returns an error wrapping ErrLeaseLost or ErrReleased that names op. The
// caller holds the lock that orders writes of op's kind (see fencedWriter).
func (l *localLease) fence(op string) error {
	t := l.t
	t.mu.Lock()
	err := l.errLocked()
	if err == nil && t.held[l.key] != l {
		err = ErrLeaseLost
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cursor: %s of %q refused: %w", op, l.key, err)
	}
	return nil
}

// Save implements [Lease].
func (l *localLease) Save(ctx context.Context, cursor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkCursor(cursor); err != nil {
		return err
	}
	return l.t.w.setFenced(l, "save cursor", l.key, cursor)
}

// SetMeta implements [Lease].
func (l *localLease) SetMeta(ctx context.Context, name, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMetaName(name); err != nil {
		return err
	}
	if err := checkValue("metadata value", value); err != nil {
		return err
	}
	return l.t.w.setFenced(l, "set "+name, metaKey(l.key, name), value)
}

// MarkDone implements [Lease].
func (l *localLease) MarkDone(ctx context.Context, msgIDs ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	if len(msgIDs) == 0 {
		return l.fence("mark done")
	}
	return l.t.w.markDoneFenced(l, msgIDs)
}

// PutReply implements [Lease].
func (l *localLease) PutReply(ctx context.Context, msgID string, rec []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkMsgIDs([]string{msgID}); err != nil {
		return err
	}
	if err := checkReply(rec); err != nil {
		return err
	}
	return l.t.w.putReplyFenced(l, msgID, rec)
}

// endLocked ends the lease with err (ErrLeaseLost or ErrReleased), frees the key if this lease holds it and
// wakes the waiters. t.mu must be held.
func (l *localLease) endLocked(err error) {
	if l.err != nil {
		return
	}
	l.err = err
	t := l.t
	if t.held[l.key] == l {
		delete(t.held, l.key)
		if ch := t.wake[l.key]; ch != nil {
			close(ch)
			delete(t.wake, l.key)
		}
	}
	close(l.done)
	close(l.stop)
}

// renew extends the lease every ttl/3 while it is held. If it finds the lease expired (the process stalled
// for longer than ttl, or the clock jumped) or taken over, it reports the loss.
func (l *localLease) renew() {
	t := l.t
	defer t.wg.Done()
	defer close(l.stopped)
	tick := time.NewTicker(max(l.ttl/3, time.Millisecond/2))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		t.mu.Lock()
		if l.err != nil {
			t.mu.Unlock()
			return
		}
		now := t.now()
		if t.held[l.key] != l || !now.Before(l.expires) {
			l.endLocked(ErrLeaseLost)
			t.mu.Unlock()
			t.logger.Warn("cursor: lease lost: not renewed before it expired", "key", l.key)
			return
		}
		l.expires = now.Add(l.ttl)
		t.mu.Unlock()
	}
}
