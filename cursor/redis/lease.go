package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// renewScript: extend the lease only if this holder's token is still the one stored (compare-and-PEXPIRE).
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseScript: delete the lease only if this holder's token is still the one stored (compare-and-DEL), so a
// holder whose lease expired cannot free its successor's.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Lock implements cursor.Locker with SET <prefix>lease:<key> <random token> NX PX ttl, polling every ~ttl/10
// (between 5 and 100 ms, jittered) while another holder has it. Once held, the lease is renewed every ttl/3
// by a compare-and-PEXPIRE script. It is lost (Done closed, Err = cursor.ErrLeaseLost) as soon as a renewal
// finds another token or no key, or when renewals have failed (Redis unreachable) until the local deadline:
// ttl after the last successful renewal was *sent*, which is never later than Redis's own expiry, so the
// holder learns of the loss before anyone else can take the key. A Redis error while acquiring is returned.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (cursor.Lease, error) {
	if err := checkKey("lease key", key); err != nil {
		return nil, err
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("%w: lease ttl %v is below 1ms", cursor.ErrInvalidArgument, ttl)
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // never fails (crypto/rand.Read panics rather than returning an error)
	token := hex.EncodeToString(tok[:])
	rkey := s.key("lease", key)
	poll := min(max(ttl/10, 5*time.Millisecond), 100*time.Millisecond)
	for {
		sent := time.Now()
		ok, err := s.c.SetNX(ctx, rkey, token, ttl).Result()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("cursor/redis: lock %q: %w", key, err)
		}
		if ok {
			return s.newLease(key, rkey, token, ttl, sent.Add(ttl)), nil
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

type lease struct {
	s     *Store
	key   string // as given to Lock, for messages
	rkey  string
	token string
	ttl   time.Duration

	mu      sync.Mutex
	err     error // nil while held
	done    chan struct{}
	cancel  context.CancelFunc // aborts an in-flight renewal when the lease ends
	ctx     context.Context
	stopped chan struct{} // closed when the renewer returned
}

func (s *Store) newLease(key, rkey, token string, ttl time.Duration, deadline time.Time) *lease {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lease{
		s: s, key: key, rkey: rkey, token: token, ttl: ttl,
		done: make(chan struct{}), ctx: ctx, cancel: cancel, stopped: make(chan struct{}),
	}
	go l.renew(deadline)
	return l
}

func (l *lease) Done() <-chan struct{} { return l.done }

func (l *lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

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
		n, err := renewScript.Run(rctx, l.s.c, []string{l.rkey}, l.token, l.ttl.Milliseconds()).Int()
		cancel()
		switch {
		case err == nil && n == 1:
			deadline = sent.Add(l.ttl)
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

// Release implements cursor.Lease: it stops renewal, then deletes the key if it still holds this lease's
// token (compare-and-DEL).
func (l *lease) Release(ctx context.Context) error {
	ended := l.end(cursor.ErrReleased)
	<-l.stopped
	if !ended {
		if errors.Is(l.Err(), cursor.ErrLeaseLost) {
			return fmt.Errorf("cursor/redis: release lease %q: %w", l.key, cursor.ErrLeaseLost)
		}
		return nil
	}
	n, err := releaseScript.Run(ctx, l.s.c, []string{l.rkey}, l.token).Int()
	if err != nil {
		return fmt.Errorf("cursor/redis: release lease %q (it expires after its ttl): %w", l.key, err)
	}
	if n == 0 {
		return fmt.Errorf("cursor/redis: release lease %q: it had expired: %w", l.key, cursor.ErrLeaseLost)
	}
	return nil
}
