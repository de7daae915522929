package kf

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// rateLimiter is NewRateLimiter's RateLimiter. Each (corp, path) has a gate: a queue of the calls
// waiting in this process, ordered by priority, then arrival. A call that finds the gate idle asks
// the store itself (one store call per API call when there is budget). Otherwise it queues, and a
// driver goroutine, which runs only while calls wait, asks the store for the whole front group of
// one priority at once (one store call for up to maxGrant calls), hands out what was admitted,
// and sleeps until the store says one more call fits.
type rateLimiter struct {
	store   RateStore
	ip      *memRateStore // per-IP ceilings (nil: none), counted in this process
	ipRules [numPriorities][]RateRule
	rules   map[string][numPriorities][]RateRule // by path; "" for the others
	pause   [3]time.Duration                     // min, max, reset

	mu    sync.Mutex
	gates map[gateKey]*gate
}

type gateKey struct{ corpID, path string }

const (
	// rateStoreTimeout bounds a store call made for waiters (by the driver) or for a Pause.
	rateStoreTimeout = 5 * time.Second
	// maxGrant bounds the calls one store call asks for.
	maxGrant = 64
)

func (l *rateLimiter) gate(corpID, path string) *gate {
	k := gateKey{corpID, path}
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.gates[k]
	if g == nil {
		rules, ok := l.rules[path]
		if !ok {
			rules = l.rules[""]
		}
		g = &gate{l: l, corpID: corpID, path: path, rules: rules, kick: make(chan struct{}, 1)}
		l.gates[k] = g
	}
	return g
}

// gate is the waiting room of one corp and path in this process.
type gate struct {
	l            *rateLimiter
	corpID, path string
	rules        [numPriorities][]RateRule

	mu       sync.Mutex
	queue    []*rateWaiter // by priority, then arrival
	asking   bool          // a caller is asking the store for itself (nobody waited)
	driverOn bool          // the driver goroutine runs (while calls wait)
	retryAt  time.Time     // when one more call may fit, as the store last said (zero: unknown)
	paused   bool          // the store's last answer was a pause
	kick     chan struct{}
}

type rateWaiter struct {
	prio     Priority
	deadline time.Time // zero: none
	done     chan error
	settled  bool // done was sent (under gate.mu)
}

// Wait implements RateLimiter.
func (l *rateLimiter) Wait(ctx context.Context, corpID, path string, p Priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p = min(max(p, PriorityFresh), PriorityBackground)
	g := l.gate(corpID, path)
	g.mu.Lock()
	if !g.asking && !g.driverOn && len(g.queue) == 0 {
		// Nobody waits: ask for this call alone.
		g.asking = true
		g.mu.Unlock()
		got, wait, paused, err := g.admit(ctx, p, 1)
		g.mu.Lock()
		g.asking = false
		if err != nil || got == 1 {
			g.ensureDriverLocked() // for the calls that queued meanwhile
			g.mu.Unlock()
			return err
		}
		g.retryAt, g.paused = time.Now().Add(wait), paused
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(g.retryAt) {
		err := g.throttled(time.Until(g.retryAt), g.paused)
		g.ensureDriverLocked()
		g.mu.Unlock()
		return err
	}
	w := &rateWaiter{prio: p, done: make(chan error, 1)}
	w.deadline, _ = ctx.Deadline()
	front := len(g.queue) == 0 || p < g.queue[0].prio
	g.insertLocked(w)
	if g.driverOn && front {
		g.kickDriver() // a higher priority is at the front now: ask for it at once
	}
	g.ensureDriverLocked()
	g.mu.Unlock()
	return g.await(ctx, w)
}

// ensureDriverLocked starts the driver if calls wait and neither it nor a caller is asking (a
// caller that is asking starts it when its answer comes).
func (g *gate) ensureDriverLocked() {
	if len(g.queue) > 0 && !g.driverOn && !g.asking {
		g.driverOn = true
		go g.drive()
	}
}

func (g *gate) kickDriver() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

func (g *gate) insertLocked(w *rateWaiter) {
	i := len(g.queue)
	for i > 0 && g.queue[i-1].prio > w.prio {
		i--
	}
	g.queue = append(g.queue, nil)
	copy(g.queue[i+1:], g.queue[i:])
	g.queue[i] = w
}

func (g *gate) removeLocked(w *rateWaiter) {
	for i, x := range g.queue {
		if x == w {
			copy(g.queue[i:], g.queue[i+1:])
			g.queue[len(g.queue)-1] = nil
			g.queue = g.queue[:len(g.queue)-1]
			return
		}
	}
}

func (g *gate) settleLocked(w *rateWaiter, err error) {
	w.settled = true
	w.done <- err
}

func (g *gate) await(ctx context.Context, w *rateWaiter) error {
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		g.mu.Lock()
		if !w.settled {
			g.removeLocked(w)
			if len(g.queue) == 0 {
				g.kickDriver() // nothing left to wait for: let the driver end
			}
		}
		g.mu.Unlock()
		return ctx.Err()
	}
}

// drive admits the queued calls: it asks the store for the front group, hands out what was
// admitted, fails the calls whose deadline comes before the next chance, and sleeps until then
// (or until a call of a higher priority arrives, or a Pause). It ends when nothing waits.
func (g *gate) drive() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.endDriverLocked()
			g.mu.Unlock()
			return
		}
		sleep := time.Until(g.retryAt)
		g.mu.Unlock()
		if sleep > 0 {
			timer.Reset(sleep)
			select {
			case <-timer.C:
			case <-g.kick:
				timer.Stop()
			}
		}

		g.mu.Lock()
		if len(g.queue) == 0 {
			g.endDriverLocked()
			g.mu.Unlock()
			return
		}
		p, n := g.queue[0].prio, 1
		for n < len(g.queue) && n < maxGrant && g.queue[n].prio == p {
			n++
		}
		g.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), rateStoreTimeout)
		got, wait, paused, err := g.admit(ctx, p, n)
		cancel()

		g.mu.Lock()
		if err != nil {
			// The store cannot tell: fail the waiting calls rather than let them go unthrottled.
			for _, w := range g.queue {
				g.settleLocked(w, err)
			}
			clear(g.queue)
			g.queue = g.queue[:0]
			g.endDriverLocked()
			g.mu.Unlock()
			return
		}
		got = min(got, len(g.queue))
		for _, w := range g.queue[:got] {
			g.settleLocked(w, nil)
		}
		rest := copy(g.queue, g.queue[got:])
		clear(g.queue[rest:])
		g.queue = g.queue[:rest]
		if got >= n {
			g.retryAt, g.paused = time.Time{}, false
		} else {
			g.retryAt, g.paused = time.Now().Add(wait), paused
			g.failLateLocked()
		}
		g.mu.Unlock()
	}
}

// failLateLocked fails the queued calls whose deadline comes before the next chance to go.
func (g *gate) failLateLocked() {
	keep := g.queue[:0]
	for _, w := range g.queue {
		if !w.deadline.IsZero() && w.deadline.Before(g.retryAt) {
			g.settleLocked(w, g.throttled(time.Until(g.retryAt), g.paused))
			continue
		}
		keep = append(keep, w)
	}
	clear(g.queue[len(keep):])
	g.queue = keep
}

func (g *gate) endDriverLocked() {
	g.driverOn = false
	g.retryAt = time.Time{}
}

// admit asks for n calls of priority p: the per-IP ceilings first (in this process), then the
// corp's store; what the IP ceilings admitted and the store did not is given back.
func (g *gate) admit(ctx context.Context, p Priority, n int) (int, time.Duration, bool, error) {
	l := g.l
	if l.ip == nil {
		return l.store.AdmitCalls(ctx, g.corpID, g.path, n, g.rules[p])
	}
	ipGot, ipWait, _, err := l.ip.AdmitCalls(ctx, "", g.path, n, l.ipRules[p])
	if err != nil || ipGot == 0 {
		return 0, ipWait, false, err
	}
	got, wait, paused, err := l.store.AdmitCalls(ctx, g.corpID, g.path, ipGot, g.rules[p])
	if err != nil {
		got = 0
	}
	l.ip.refund("", g.path, ipGot-got, l.ipRules[p])
	if err != nil {
		return 0, 0, false, err
	}
	if got == ipGot && ipGot < n {
		wait = max(wait, ipWait) // the IP ceilings held the rest back
	}
	return got, wait, paused, nil
}

func (g *gate) throttled(wait time.Duration, paused bool) error {
	why := "its budget is spent"
	if paused {
		why = "paused after a 45009"
	}
	return fmt.Errorf("%w: %s: %s for another %v, past the context's deadline", ErrThrottled, g.path, why, wait.Round(time.Millisecond))
}

// Pause implements RateLimiter. The gate's driver, if calls wait, asks the store again at once, so
// that they learn of the pause (and those whose deadline comes first fail now).
func (l *rateLimiter) Pause(ctx context.Context, corpID, path string) (time.Duration, int, error) {
	d, strike, err := l.store.PauseCalls(ctx, corpID, path, l.pause[0], l.pause[1], l.pause[2])
	if err != nil {
		return 0, 0, err
	}
	l.gate(corpID, path).kickDriver()
	return d, strike, nil
}
