package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// lockScript takes a free lease: KEYS[1] the lease, KEYS[2] the fencing counter; ARGV[1] the holder's random
// hex, ARGV[2] the ttl (ms). If the lease is free it sets it to "<token>:<hex>" with PX ttl, where token is the
// counter incremented, and returns the token; else it returns nil and changes nothing.
var lockScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
`)

// renewScript: extend the lease only if this holding's value is still the one stored (compare-and-PEXPIRE).
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript: delete the lease only if this holding's value is still the one stored (compare-and-DEL), so
// a holder whose lease expired cannot free its successor's.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Lock implements cursor.Locker with a script on <prefix>{<key>}:lease: if the key is free, INCR the fencing
// counter <prefix>{<key>}:fence and SET the lease to "<token>:<random hex>" PX ttl. While another holder has
// it, Lock polls every ~ttl/10 (between 5 and 100 ms, jittered). Once held, the lease is renewed every ttl/3
// by a compare-and-PEXPIRE script. It is lost (Done closed, Err = cursor.ErrLeaseLost) as soon as a renewal
// or a fenced write finds another value or no key, or when renewals have failed (Redis unreachable) until
// the local deadline: ttl after the last successful renewal was *sent*, which is never later than Redis's
// own expiry, so the holder learns of the loss before anyone else can take the key. Err reads the deadline
// itself (time.Now, monotonic), so a process paused past it sees the loss at once on resuming. A Redis error
// while acquiring is returned. key must not contain '{' or '}'.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (cursor.Lease, error) {
	if err := checkAccount("lease key", key); err != nil {
		return nil, err
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("%w: lease ttl %v is below 1ms", cursor.ErrInvalidArgument, ttl)
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var random [16]byte
	_, _ = rand.Read(random[:]) // never fails (crypto/rand.Read panics rather than returning an error)
	hexed := hex.EncodeToString(random[:])
	keys := []string{s.acct(key, "lease"), s.acct(key, "fence")}
	poll := min(max(ttl/10, 5*time.Millisecond), 100*time.Millisecond)
	for {
		sent := time.Now()
		token, err := lockScript.Run(ctx, s.c, keys, hexed, ttl.Milliseconds()).Int64()
		switch {
		case err == nil:
			value := strconv.FormatInt(token, 10) + ":" + hexed
			return s.newLease(key, value, uint64(token), ttl, sent.Add(ttl)), nil
		case !errors.Is(err, goredis.Nil):
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("cursor/redis: lock %q: %w", key, err)
		}
		timer := time.NewTimer(poll/2 + mathrand.N(poll))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// lease is one holding of a key: the value "<token>:<hex>" stored under <prefix>{<key>}:lease.
type lease struct {
	s     *Store
	key   string // as given to Lock
	rkey  string // <prefix>{<key>}:lease
	value string
	token uint64
	ttl   time.Duration

	registered atomic.Bool // key was added to <prefix>accounts by this holding

	mu       sync.Mutex
	err      error     // nil while held
	deadline time.Time // ttl after the last successful renewal was sent
	done     chan struct{}
	cancel   context.CancelFunc // aborts an in-flight renewal when the lease ends
	ctx      context.Context
	stopped  chan struct{} // closed when the renewer returned

	pmu     sync.Mutex
	lastPut *putBatch // the newest batch of PutReply, until its write starts
}

func (s *Store) newLease(key, value string, token uint64, ttl time.Duration, deadline time.Time) *lease {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lease{
		s: s, key: key, rkey: s.acct(key, "lease"), value: value, token: token, ttl: ttl,
		deadline: deadline, done: make(chan struct{}), ctx: ctx, cancel: cancel, stopped: make(chan struct{}),
	}
	go l.renew(deadline)
	return l
}

// Done implements cursor.Lease.
func (l *lease) Done() <-chan struct{} { return l.done }

// Err implements cursor.Lease: the renewer's verdict, or cursor.ErrLeaseLost once the deadline has passed.
func (l *lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && !time.Now().Before(l.deadline) {
		return cursor.ErrLeaseLost
	}
	return l.err
}

// Key implements cursor.Lease.
func (l *lease) Key() string { return l.key }

// Token implements cursor.Lease: the value of <prefix>{<key>}:fence that Lock's INCR returned.
func (l *lease) Token() uint64 { return l.token }

// end records why the lease ended (first call wins) and reports whether this call ended it.
func (l *lease) end(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return false
	}
	l.err = err
	close(l.done)
	l.cancel()
	return true
}

func (l *lease) lose(why string, err error) {
	if l.end(cursor.ErrLeaseLost) {
		l.s.logger.Warn("cursor/redis: lease lost", "key", l.key, "why", why, "err", err)
	}
}

func (l *lease) renew(deadline time.Time) {
	defer close(l.stopped)
	interval := max(l.ttl/3, time.Millisecond/2)
	tick := time.NewTimer(interval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Until(deadline))
	defer expiry.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-expiry.C:
			l.lose("not renewed before it expired", nil)
			return
		case <-tick.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(l.ctx, deadline)
		n, err := renewScript.Run(rctx, l.s.c, []string{l.rkey}, l.value, l.ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			deadline = sent.Add(l.ttl)
			l.mu.Lock()
			l.deadline = deadline
			l.mu.Unlock()
			expiry.Reset(time.Until(deadline))
			tick.Reset(interval)
		case err == nil:
			l.lose("the key expired or another holder has it", nil)
			return
		case l.ctx.Err() != nil:
			return // released or lost meanwhile
		case !time.Now().Before(deadline):
			l.lose("Redis unreachable until the lease expired", err)
			return
		default:
			// Keep trying until the deadline; the expiry timer fires if Redis stays away.
			l.s.logger.Warn("cursor/redis: lease renewal failed; retrying", "key", l.key, "err", err)
			tick.Reset(min(interval, max(time.Until(deadline)/3, time.Millisecond)))
		}
	}
}

// Release implements cursor.Lease: it stops renewal, then deletes the key if it still holds this holding's
// value (compare-and-DEL). A lease past its deadline was lost, not released.
func (l *lease) Release(ctx context.Context) error {
	if errors.Is(l.Err(), cursor.ErrLeaseLost) {
		l.lose("not renewed before it expired", nil)
	}
	ended := l.end(cursor.ErrReleased)
	<-l.stopped
	if !ended {
		if errors.Is(l.Err(), cursor.ErrLeaseLost) {
			return fmt.Errorf("cursor/redis: release lease %q: %w", l.key, cursor.ErrLeaseLost)
		}
		return nil
	}
	n, err := releaseScript.Run(ctx, l.s.c, []string{l.rkey}, l.value).Int()
	if err != nil {
		return fmt.Errorf("cursor/redis: release lease %q (it expires after its ttl): %w", l.key, err)
	}
	if n == 0 {
		return fmt.Errorf("cursor/redis: release lease %q: it had expired: %w", l.key, cursor.ErrLeaseLost)
	}
	return nil
}
