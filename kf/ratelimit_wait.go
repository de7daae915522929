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
//
// On a shared store (any but the in-process one), a busy gate also prefetches: each store call asks
// for as many calls more as the gate saw in the previous prefetchWindow (100 ms), at most
// maxPrefetch (16); a gate that saw one call or none asks for none, so replicas that trickle spend no
// budget ahead. What the store admits beyond the calls being served becomes the gate's credits,
// tagged with the priority whose rules admitted them and valid for prefetchWindow: a later call of
// that priority or a higher one (a lower value) takes one without a store call, and the driver
// serves queued calls from them before asking. Expired credits are dropped (the store has no
// refund), so a replica holds at most maxPrefetch calls of the corp's budget unused, for at most
// prefetchWindow. Pause drops the gate's credits at once, and so do the answers to store calls made
// before it; after another replica's 45009, this one may still send the calls it prefetched, for up
// to prefetchWindow.
type rateLimiter struct {
	store   RateStore
	ip      *memRateStore // per-IP ceilings (nil: none), counted in this process
	ipRules [numPriorities][]RateRule
	rules   map[string][numPriorities][]RateRule // by path; "" for the others
	pause   [3]time.Duration                     // min, max, reset
	// prefetch: gates fetch credits ahead (the store is not this process's; tests set it).
	prefetch bool

	mu    sync.Mutex
	gates map[gateKey]*gate
}

type gateKey struct{ corpID, path string }

const (
	// rateStoreTimeout bounds a store call made for waiters (by the driver) or for a Pause.
	rateStoreTimeout = 5 * time.Second
	// maxGrant bounds the calls one store call asks for.
	maxGrant = 64
	// prefetchWindow is how long a credit is valid, and the window over which a gate counts its
	// calls to size the next prefetch.
	prefetchWindow = 100 * time.Millisecond
	// maxPrefetch bounds the calls a gate fetches ahead.
	maxPrefetch = 16
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

	// Prefetch (only when rateLimiter.prefetch): credits by the priority whose rules admitted them;
	// the calls counted in the current window (from winStart) and in the previous one; epoch
	// counts the pauses, so that an answer asked for before one adds no credits.
	credits             [numPriorities]rateCredits
	winStart            time.Time
	winCalls, lastCalls int
	epoch               uint64
}

// rateCredits are calls the store admitted ahead of need, usable until exp.
type rateCredits struct {
	n   int
	exp time.Time
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
	var now time.Time // with prefetch only
	extra := 0
	if l.prefetch {
		now = time.Now()
		g.countLocked(now)
		extra = g.extraLocked(now)
		if (len(g.queue) == 0 || g.queue[0].prio > p) && g.takeCreditLocked(p, now) {
			g.mu.Unlock()
			return nil
		}
	}
	if !g.asking && !g.driverOn && len(g.queue) == 0 {
		// Nobody waits: ask for this call alone (and the credits to fetch ahead).
		g.asking = true
		epoch := g.epoch
		g.mu.Unlock()
		got, wait, paused, err := g.admit(ctx, p, 1+extra)
		g.mu.Lock()
		g.asking = false
		if l.prefetch && err == nil && got > 1 && epoch == g.epoch { // no Pause came meanwhile
			g.addCreditsLocked(p, got-1, now)
			g.serveCreditsLocked() // the calls that queued meanwhile
		}
		if err != nil || got >= 1 {
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

// popLocked settles the first k queued calls with err and removes them.
func (g *gate) popLocked(k int, err error) {
	for _, w := range g.queue[:k] {
		g.settleLocked(w, err)
	}
	rest := copy(g.queue, g.queue[k:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
}

// countLocked counts a call in the current prefetch window, starting a new window when it is over.
func (g *gate) countLocked(now time.Time) {
	if now.Sub(g.winStart) >= prefetchWindow {
		g.lastCalls = g.previousCallsLocked(now)
		g.winStart, g.winCalls = now, 0
	}
	g.winCalls++
}

// previousCallsLocked is how many calls the window before the one of now saw.
func (g *gate) previousCallsLocked(now time.Time) int {
	switch d := now.Sub(g.winStart); {
	case d < prefetchWindow:
		return g.lastCalls
	case d < 2*prefetchWindow:
		return g.winCalls
	}
	return 0
}

// extraLocked is how many calls to fetch ahead at now: as many as the previous window saw, at most
// maxPrefetch, none when it saw one or none (or without prefetch).
func (g *gate) extraLocked(now time.Time) int {
	if !g.l.prefetch {
		return 0
	}
	if n := g.previousCallsLocked(now); n > 1 {
		return min(n, maxPrefetch)
	}
	return 0
}

// addCreditsLocked keeps k calls that the store admitted under priority p's rules, for a store
// call made at asked, as credits valid until asked+prefetchWindow (or the earlier expiry of the
// credits of p still valid).
func (g *gate) addCreditsLocked(p Priority, k int, asked time.Time) {
	if k <= 0 {
		return
	}
	c := &g.credits[p]
	exp := asked.Add(prefetchWindow)
	if c.n > 0 && time.Now().Before(c.exp) {
		c.n += k
		if exp.Before(c.exp) {
			c.exp = exp
		}
		return
	}
	*c = rateCredits{n: k, exp: exp}
}

// takeCreditLocked takes a valid credit for a call of priority p: one admitted under the rules of
// p or of a lower priority (stricter ones), the nearest first. It drops the expired ones it meets.
func (g *gate) takeCreditLocked(p Priority, now time.Time) bool {
	for t := p; t < numPriorities; t++ {
		c := &g.credits[t]
		if c.n == 0 {
			continue
		}
		if !now.Before(c.exp) {
			*c = rateCredits{}
			continue
		}
		c.n--
		return true
	}
	return false
}

// serveCreditsLocked lets the queued calls go that valid credits cover, in queue order: the first
// that none covers stops it (the calls behind it have its priority or a lower one).
func (g *gate) serveCreditsLocked() {
	now, k := time.Now(), 0
	for k < len(g.queue) && g.takeCreditLocked(g.queue[k].prio, now) {
		k++
	}
	g.popLocked(k, nil)
}

// dropCredits forgets the gate's credits, and those that store calls asked for before now bring.
func (g *gate) dropCredits() {
	g.mu.Lock()
	g.credits = [numPriorities]rateCredits{}
	g.epoch++
	g.mu.Unlock()
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
		if g.l.prefetch {
			g.serveCreditsLocked()
		}
		if len(g.queue) == 0 {
			g.endDriverLocked()
			g.mu.Unlock()
			return
		}
		p, n := g.queue[0].prio, 1
		for n < len(g.queue) && n < maxGrant && g.queue[n].prio == p {
			n++
		}
		asked := time.Now()
		extra := min(g.extraLocked(asked), maxGrant-n)
		epoch := g.epoch
		g.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), rateStoreTimeout)
		got, wait, paused, err := g.admit(ctx, p, n+extra)
		cancel()

		g.mu.Lock()
		if err != nil {
			// The store cannot tell: fail the waiting calls rather than let them go unthrottled.
			g.popLocked(len(g.queue), err)
			g.endDriverLocked()
			g.mu.Unlock()
			return
		}
		if g.l.prefetch {
			// The front group takes what it needs; the rest waits as credits (unless a Pause came).
			if epoch != g.epoch {
				got = min(got, n) // a Pause came: the group goes (as without prefetch), no credits
			}
			g.addCreditsLocked(p, got, asked)
			g.serveCreditsLocked()
			if epoch != g.epoch {
				g.credits[p] = rateCredits{}
			}
		} else {
			g.popLocked(min(got, len(g.queue)), nil)
		}
		if got >= n {
			g.retryAt, g.paused = time.Time{}, false
		} else {
			if g.l.prefetch && !paused {
				wait += g.paceLocked(p, n-got)
			}
			g.retryAt, g.paused = time.Now().Add(wait), paused
			g.failLateLocked()
		}
		g.mu.Unlock()
	}
}

// paceBatch is how many queued calls, at most, a shared store's driver lets the budget gather for
// before it asks again, when calls are paced at the ceiling: one store call then admits several.
const paceBatch = 8

// paceLocked is how much longer than until the next call fits the driver waits when short calls
// of priority p remain: until min(short, paceBatch) fit, at the rate of p's strictest rule. At
// WeCom's ceiling of 9,500 calls a minute that is at most 44 ms more for the first of 8 calls that
// were waiting anyway, and it turns eight store calls into one.
// It never waits for more calls than every rule's burst holds, which would waste budget.
func (g *gate) paceLocked(p Priority, short int) time.Duration {
	var iv time.Duration
	k := min(short, paceBatch)
	for _, r := range g.rules[p] {
		iv = max(iv, r.Interval)
		if r.Interval > 0 {
			k = min(k, int(r.Tolerance/r.Interval))
		}
	}
	if k <= 1 {
		return 0
	}
	return time.Duration(k-1) * min(iv, prefetchWindow/paceBatch*2)
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

// Pause implements RateLimiter. It drops the gate's credits at once (and again once the store has
// the pause, for the store calls that were under way), so that no call goes out on credits fetched
// before it. The gate's driver, if calls wait, asks the store again at once, so that they learn of
// the pause (and those whose deadline comes first fail now).
func (l *rateLimiter) Pause(ctx context.Context, corpID, path string) (time.Duration, int, error) {
	g := l.gate(corpID, path)
	g.dropCredits()
	d, strike, err := l.store.PauseCalls(ctx, corpID, path, l.pause[0], l.pause[1], l.pause[2])
	g.dropCredits()
	if err != nil {
		return 0, 0, err
	}
	g.kickDriver()
	return d, strike, nil
}
