package kftest

import (
	"fmt"
	"time"
)

// CodeRateLimited is 45009: the API's frequency limit was hit (doc 90454: per corp and API,
// 10,000 calls a minute and 150,000 an hour; per IP and API, 20,000 a minute). Once hit, WeCom keeps
// refusing that API for the corp for a while (reports range from a minute to an hour).
const CodeRateLimited = 45009

// RateLimit is a frequency limit the fake enforces on one API path of its corp, as WeCom does
// (doc 90454). Tests scale it down: e.g. 600 calls a minute instead of 10,000.
type RateLimit struct {
	// Calls is how many calls the path accepts in any window of Per; more are answered 45009.
	Calls int
	// Per is the window (WeCom: a minute, and an hour).
	Per time.Duration
	// Lock is how long the path keeps answering 45009 after the limit was hit (0: only the calls
	// over the limit are refused).
	Lock time.Duration
}

// limiter is the state of one path's limit: the times of the calls in the current window.
type limiter struct {
	RateLimit
	times  []time.Time // ring of the last Calls accepted calls, oldest at head
	head   int
	locked time.Time // refused until then
	hits   int       // calls answered 45009
}

// SetRateLimit limits the calls to path (e.g. "/cgi-bin/kf/send_msg"; "" for every path, each
// counted on its own) to l, by the Server's clock. A call over the limit, or during the lock that
// follows, is answered {"errcode":45009} without effect; it is counted in Calls and listed in
// Rejected. A zero RateLimit removes the limit. It panics on a negative or partial limit (Calls
// without Per), a programming error in a test.
func (s *Server) SetRateLimit(path string, l RateLimit) {
	if l.Calls < 0 || l.Per < 0 || l.Lock < 0 || (l.Calls > 0) != (l.Per > 0) {
		panic(fmt.Sprintf("kftest: SetRateLimit(%q, %+v): want Calls > 0 with Per > 0, or zero", path, l))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		s.limits = map[string]RateLimit{}
		s.limiters = map[string]*limiter{}
	}
	for p := range s.limiters {
		if path == "" || p == path {
			delete(s.limiters, p)
		}
	}
	if l.Calls == 0 {
		delete(s.limits, path)
		return
	}
	s.limits[path] = l
}

// RateLimitHits returns how many calls to path were answered 45009.
func (s *Server) RateLimitHits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lim := s.limiters[path]; lim != nil {
		return lim.hits
	}
	return 0
}

// rateLimitedLocked counts a call to path and reports whether it is refused. s.mu held.
func (s *Server) rateLimitedLocked(path string, now time.Time) bool {
	l, ok := s.limits[path]
	if !ok {
		if l, ok = s.limits[""]; !ok {
			return false
		}
	}
	lim := s.limiters[path]
	if lim == nil {
		lim = &limiter{RateLimit: l, times: make([]time.Time, 0, l.Calls)}
		s.limiters[path] = lim
	}
	if now.Before(lim.locked) {
		lim.hits++
		return true
	}
	if len(lim.times) == lim.Calls {
		oldest := lim.times[lim.head]
		if now.Sub(oldest) < lim.Per {
			lim.hits++
			lim.locked = now.Add(lim.Lock)
			return true
		}
		lim.times[lim.head] = now
		lim.head = (lim.head + 1) % lim.Calls
		return false
	}
	lim.times = append(lim.times, now)
	return false
}
