package kf

import (
	"context"
	"sync"
	"time"
)

// memRateStore is the in-process RateStore: the default of NewRateLimiter, and the per-IP
// ceilings' state. cursor/redis's script does the same in Redis; a test runs both through one table.
type memRateStore struct {
	mu    sync.Mutex
	start time.Time            // the origin of the monotonic offsets below
	now   func() time.Duration // offset of now from start (tests replace it)
	cells map[[2]string]*memRateCell
}

// memRateCell is one scope's state; times are offsets from memRateStore.start.
type memRateCell struct {
	tats      []time.Duration // one theoretical arrival time per rule
	pausedTo  time.Duration   // end of the last pause; 0 once the probe went after it
	probe     time.Duration   // how long the calls after the probe wait (see pauseProbe)
	heldTo    time.Duration   // the calls after the probe wait until then
	strikeEnd time.Duration   // a pause starting before this is consecutive to the last
	strikes   int
}

func newMemRateStore() *memRateStore {
	s := &memRateStore{start: time.Now(), cells: make(map[[2]string]*memRateCell)}
	s.now = func() time.Duration { return time.Since(s.start) + time.Nanosecond }
	return s
}

func (s *memRateStore) cell(corpID, path string, rules int) *memRateCell {
	k := [2]string{corpID, path}
	c := s.cells[k]
	if c == nil {
		c = &memRateCell{}
		s.cells[k] = c
	}
	for len(c.tats) < rules {
		c.tats = append(c.tats, 0)
	}
	return c
}

// AdmitCalls implements RateStore.
func (s *memRateStore) AdmitCalls(ctx context.Context, corpID, path string, n int, rules []RateRule) (int, time.Duration, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := s.cell(corpID, path, len(rules))
	switch {
	case c.pausedTo > now:
		return 0, c.pausedTo - now, true, nil
	case c.heldTo > now:
		return 0, c.heldTo - now, true, nil
	}
	grant := n
	if c.pausedTo > 0 {
		grant = 1 // the probe goes alone
	}
	var tats [4]time.Duration
	tat := tats[:0]
	for i, r := range rules {
		t := max(c.tats[i], now)
		tat = append(tat, t)
		grant = min(grant, int((now+r.Tolerance-t)/r.Interval))
	}
	grant = max(grant, 0)
	var wait time.Duration
	if grant < n {
		for i, r := range rules {
			wait = max(wait, tat[i]+time.Duration(grant+1)*r.Interval-r.Tolerance-now)
		}
	}
	if grant > 0 {
		for i, r := range rules {
			c.tats[i] = tat[i] + time.Duration(grant)*r.Interval
		}
		if c.pausedTo > 0 {
			c.pausedTo, c.heldTo = 0, now+c.probe
			if grant < n {
				wait = max(wait, c.probe)
			}
		}
	}
	return grant, wait, false, nil
}

// refund gives back k calls admitted by AdmitCalls that did not go (the per-IP ceilings admit
// first, the corp's store second).
func (s *memRateStore) refund(corpID, path string, k int, rules []RateRule) {
	if k <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cell(corpID, path, len(rules))
	for i, r := range rules {
		c.tats[i] -= time.Duration(k) * r.Interval
	}
}

// PauseCalls implements RateStore.
func (s *memRateStore) PauseCalls(ctx context.Context, corpID, path string, min, max, reset time.Duration) (time.Duration, int, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := s.cell(corpID, path, 0)
	if c.pausedTo > now {
		return c.pausedTo - now, 0, nil
	}
	if now > c.strikeEnd {
		c.strikes = 0
	}
	c.strikes++
	d := pauseLength(min, max, c.strikes)
	c.pausedTo = now + d
	c.probe = pauseProbe(min)
	c.strikeEnd = c.pausedTo + reset
	return d, c.strikes, nil
}

// pauseProbe is how long, after a pause, the calls after the first (the probe) wait, so that a lock
// WeCom still holds costs one call, not a burst: a second, or a quarter of the first pause if less.
func pauseProbe(min time.Duration) time.Duration {
	if min/4 < time.Second {
		return min / 4
	}
	return time.Second
}

// pauseLength is min doubled strike-1 times, capped at max.
func pauseLength(min, max time.Duration, strike int) time.Duration {
	d := min
	for i := 1; i < strike && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
