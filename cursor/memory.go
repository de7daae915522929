package cursor

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store, Locker and Dedup held in process memory: for tests and for deployments that accept
// replaying the last 3 days after a restart. Leases are between goroutines of this process.
//
// The zero value is not usable; create one with [NewMemory]. Safe for concurrent use.
type Memory struct {
	cfg    config
	leases *leaseTable

	mu      sync.Mutex
	cursors map[string]string
	done    doneSet
	closed  bool
}

var (
	_ Store  = (*Memory)(nil)
	_ Locker = (*Memory)(nil)
	_ Dedup  = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store. Options: [WithClock], [WithRetention], [WithLogger].
func NewMemory(opts ...Option) *Memory {
	cfg := newConfig(opts)
	return &Memory{
		cfg:     cfg,
		leases:  newLeaseTable(cfg.now, cfg.logger),
		cursors: make(map[string]string),
		done:    newDoneSet(cfg.retention.Milliseconds()),
	}
}

// Load implements [Store].
func (m *Memory) Load(ctx context.Context, openKfID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	return m.cursors[openKfID], nil
}

// Save implements [Store].
func (m *Memory) Save(ctx context.Context, openKfID, cursor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkCursor(cursor); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.cursors[openKfID] = cursor
	return nil
}

// MarkDone implements [Dedup].
func (m *Memory) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.cfg.now().UnixMilli()
	m.done.expire(now)
	for _, id := range msgIDs {
		m.done.add(openKfID, id, now)
	}
	return nil
}

// Done implements [Dedup].
func (m *Memory) Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return nil, err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.cfg.now().UnixMilli()
	m.done.expire(now)
	out := make([]bool, len(msgIDs))
	for i, id := range msgIDs {
		out[i] = m.done.has(openKfID, id, now)
	}
	return out, nil
}

// Lock implements [Locker] between goroutines of this process.
func (m *Memory) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	return m.leases.lock(ctx, key, ttl)
}

// Close ends all leases (their holders see [ErrLeaseLost]) and waits for their renewers; afterwards every
// method returns [ErrClosed]. Close is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.leases.close()
	return nil
}
