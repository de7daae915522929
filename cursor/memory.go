package cursor

import (
	"context"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is a [State] held in process memory: for tests and for deployments that accept replaying the last 3
// days after a restart. Leases are between goroutines of this process; a fenced write ([Lease.Save] and the
// others) is checked and made under the one mutex that orders every write, so a lease that lost its key
// cannot write after its successor.
//
// The zero value is not usable; create one with [NewMemory]. Safe for concurrent use.
type Memory struct {
	cfg    config
	err    error // an invalid option: every method returns it
	leases *leaseTable

	mu      sync.Mutex
	cursors map[string]string // open_kfid → cursor, and metaKey(open_kfid, name) → metadata value
	done    msgSet
	replies msgSet
	closed  bool
}

var _ State = (*Memory)(nil)

// NewMemory returns an empty in-memory store. Options: [WithClock], [WithRetention], [WithLogger]. An invalid
// option is reported, wrapping [ErrInvalidArgument], by every method (Close included), since NewMemory has no
// error to return.
func NewMemory(opts ...Option) *Memory {
	cfg := newConfig(opts)
	m := &Memory{
		cfg:     cfg,
		err:     cfg.err,
		cursors: make(map[string]string),
		done:    newMsgSet(cfg.retention.Milliseconds()),
		replies: newMsgSet(cfg.retention.Milliseconds()),
	}
	m.leases = newLeaseTable(cfg.now, cfg.logger, m)
	return m
}

// lock takes m.mu after the checks every method makes: the options, ctx, then openKfID.
func (m *Memory) lock(ctx context.Context, openKfID string) error {
	if m.err != nil {
		return m.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Load implements [Store].
func (m *Memory) Load(ctx context.Context, openKfID string) (string, error) {
	if err := m.lock(ctx, openKfID); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	return m.cursors[openKfID], nil
}

// Save implements [Store].
func (m *Memory) Save(ctx context.Context, openKfID, cursor string) error {
	if err := checkCursor(cursor); err != nil {
		return err
	}
	if err := m.lock(ctx, openKfID); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.cursors[openKfID] = cursor
	return nil
}

// MarkDone implements [Dedup]. It also deletes the reply records of msgIDs, as [Lease.MarkDone] does.
func (m *Memory) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	if err := m.lock(ctx, openKfID); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.markDoneLocked(openKfID, msgIDs)
	return nil
}

func (m *Memory) markDoneLocked(openKfID string, msgIDs []string) {
	now := m.cfg.now().UnixMilli()
	m.done.expire(now)
	for _, id := range msgIDs {
		m.done.add(openKfID, id, now, nil)
		m.replies.remove(openKfID, id)
	}
}

// Done implements [Dedup].
func (m *Memory) Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error) {
	return dones(m.Lookup(ctx, openKfID, msgIDs...))
}

// dones is Done from the answer of Lookup.
func dones(st []Status, err error) ([]bool, error) {
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(st))
	for i, s := range st {
		out[i] = s.Done
	}
	return out, nil
}

// Lookup implements [State].
func (m *Memory) Lookup(ctx context.Context, openKfID string, msgIDs ...string) ([]Status, error) {
	if err := checkMsgIDs(msgIDs); err != nil {
		return nil, err
	}
	if err := m.lock(ctx, openKfID); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	now := m.cfg.now().UnixMilli()
	m.done.expire(now)
	m.replies.expire(now)
	return lookup(&m.done, &m.replies, openKfID, msgIDs, now), nil
}

// lookup answers Lookup from the done marks and reply records of Memory or Dir.
func lookup(done, replies *msgSet, openKfID string, msgIDs []string, now int64) []Status {
	out := make([]Status, len(msgIDs))
	for i, id := range msgIDs {
		if done.has(openKfID, id, now) {
			out[i].Done = true
		} else if mk, ok := replies.get(openKfID, id, now); ok {
			out[i].Reply = slices.Clone(mk.rec)
		}
	}
	return out
}

// LoadMeta implements [State].
func (m *Memory) LoadMeta(ctx context.Context, openKfID, name string) (string, error) {
	if err := checkMetaName(name); err != nil {
		return "", err
	}
	if err := m.lock(ctx, openKfID); err != nil {
		return "", err
	}
	defer m.mu.Unlock()
	return m.cursors[metaKey(openKfID, name)], nil
}

// Accounts implements [State].
func (m *Memory) Accounts(ctx context.Context) ([]string, error) {
	if m.err != nil {
		return nil, m.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return accounts(maps.Keys(m.cursors)), nil
}

// accounts returns the distinct open_kfids of keys, keys of a cursor map.
func accounts(keys iter.Seq[string]) []string {
	seen := make(map[string]bool)
	out := []string{}
	for k := range keys {
		if a := accountOf(k); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// Lock implements [Locker] between goroutines of this process.
func (m *Memory) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if m.err != nil {
		return nil, m.err
	}
	return m.leases.lock(ctx, key, ttl)
}

// lockFenced takes m.mu and checks the lease, for a fenced write.
func (m *Memory) lockFenced(l *localLease, op string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if err := l.fence(op); err != nil {
		m.mu.Unlock()
		return err
	}
	return nil
}

func (m *Memory) setFenced(l *localLease, op, key, value string) error {
	if err := m.lockFenced(l, op); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.cursors[key] = value
	return nil
}

func (m *Memory) markDoneFenced(l *localLease, msgIDs []string) error {
	if err := m.lockFenced(l, "mark done"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.markDoneLocked(l.key, msgIDs)
	return nil
}

func (m *Memory) putReplyFenced(l *localLease, msgID string, rec []byte) error {
	if err := m.lockFenced(l, "put reply"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.cfg.now().UnixMilli()
	m.replies.expire(now)
	m.replies.add(l.key, msgID, now, slices.Clone(rec))
	return nil
}

// Close ends all leases (their holders see [ErrLeaseLost]) and waits for their renewers; afterwards every
// method returns [ErrClosed]. Close is idempotent. It returns the error of an invalid option, if any.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.leases.close()
	return m.err
}
