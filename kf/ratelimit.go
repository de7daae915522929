package kf

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"
)

// WeCom's frequency limits (doc 90454, §10): a call over one is answered 45009 (ErrRateLimited), and
// WeCom then refuses that API for the whole corp for a while (reports range from a minute to an hour).
const (
	// DefaultCallsPerMinute and DefaultCallsPerHour are the ceilings per corp and per API path.
	DefaultCallsPerMinute = 10000
	DefaultCallsPerHour   = 150000
	// DefaultIPCallsPerMinute is the ceiling per calling IP and per API path, whatever the corp.
	DefaultIPCallsPerMinute = 20000
)

// Defaults of NewRateLimiter.
const (
	// DefaultRateMargin is the safety margin under every ceiling: calls flow at 95 % of it, and no
	// window of its length holds more than 97.5 % of it (a burst of 2.5 % after a quiet spell).
	DefaultRateMargin = 0.05
	// DefaultPauseMin is the pause of an API path after a 45009: WeCom's lock is reported to last a
	// minute at least.
	DefaultPauseMin = time.Minute
	// DefaultPauseMax caps the pause: consecutive 45009s double it up to an hour, the longest lock
	// reported.
	DefaultPauseMax = time.Hour
	// DefaultPauseReset: a 45009 that comes this long after the previous pause ended starts again
	// from DefaultPauseMin.
	DefaultPauseReset = 10 * time.Minute
)

// ErrThrottled is wrapped by the error of a call that the rate limiter could not let go before its
// context's deadline: the API path is paused after a 45009, or its budget is spent for longer than
// the deadline allows. Nothing was sent. The Channel retries such a failure like any transient one.
var ErrThrottled = errors.New("kf: throttled by the rate limiter")

// Priority ranks API calls when a RateLimiter's budget is short: a call waits while calls of a
// higher priority (a lower value) wait for the same corp and path.
type Priority int8

const (
	// PriorityFresh is the priority of replies to fresh messages and of every call not marked
	// otherwise.
	PriorityFresh Priority = iota
	// PriorityRetry is the priority of the calls a handler makes when the Channel runs it again
	// for the same message (a retry after a transient failure).
	PriorityRetry
	// PriorityBackground is the lowest: SyncMsg without a callback token (polls, the start-up
	// sweep, a pull after the token expired) and whatever an application marks so.
	PriorityBackground
)

const numPriorities = 3

type priorityKey struct{}

// PriorityContext returns a copy of ctx under which the Client's calls have priority p (see
// Priority). The Channel marks a handler's reruns PriorityRetry; SyncMsg without a token always
// runs at PriorityBackground.
func PriorityContext(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// priorityOf returns the priority ctx carries (PriorityFresh when none), within range.
func priorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey{}).(Priority)
	return min(max(p, PriorityFresh), PriorityBackground)
}

// RateLimiter keeps a Client's API calls under WeCom's frequency limits (doc 90454). The Client
// calls Wait before every HTTP attempt (a retry is another call for WeCom) and Pause when WeCom
// answers 45009. NewRateLimiter returns the implementation of this package; one shared through a
// RateStore (cursor/redis) coordinates every replica of a bot.
type RateLimiter interface {
	// Wait blocks until one call to path (e.g. "/cgi-bin/kf/send_msg") for corpID may go, calls of
	// a higher priority first. It returns ctx's error if ctx ends first, an error wrapping
	// ErrThrottled at once if the call cannot go before ctx's deadline, or an error of the state
	// the limiter keeps.
	Wait(ctx context.Context, corpID, path string, p Priority) error
	// Pause records a 45009 answer to a call to path for corpID: calls to path for the corp wait
	// for a while, on every process sharing the limiter. It returns how long they now wait and
	// which pause in a row this answer started; strike is 0 when the path was paused already (a
	// call that was in flight when the pause began), which does not lengthen the pause.
	Pause(ctx context.Context, corpID, path string) (d time.Duration, strike int, err error)
}

// RateRule is one rule of a RateStore's generic cell rate algorithm (GCRA): a call may go when the
// scope's theoretical arrival time (TAT), advanced by Interval, is at most Tolerance ahead of now.
// It is an alias of an unnamed struct type, so that a store in another package implements
// RateStore with the same literal type and without importing this package.
type RateRule = struct {
	// Interval is the emission interval: the rule's window divided by the calls it lets through.
	Interval time.Duration
	// Tolerance is how far ahead of now the TAT may run: the burst, times Interval; at least
	// Interval.
	Tolerance time.Duration
}

// RateStore keeps the state of the RateLimiter of NewRateLimiter: a GCRA state (one TAT per rule)
// and a pause per scope, a scope being a corp and an API path. The default keeps it in the
// process; cursor/redis's Store keeps it in Redis, one Lua script per call, so that every replica
// of a bot shares one budget per corp and API. Each method must be atomic per scope and read one
// clock for every caller (cursor/redis uses the Redis server's). For one scope, rules[i] is always
// the same window (its state is kept by position); only Tolerance varies, with the priority.
type RateStore interface {
	// AdmitCalls lets up to n calls in scope go now. While the scope is paused it admits none and
	// returns the time left (paused true). Otherwise it admits the most calls m ≤ n that every
	// rule allows now, advances each rule's TAT by m·Interval, and returns m and, when m < n, how
	// long until one more call fits. The first admission after a pause admits one call, the
	// probe, and holds the others back (as paused) for a quarter of the pause's min, at most a
	// second, so that a lock WeCom still holds costs one call, not a burst.
	AdmitCalls(ctx context.Context, corpID, path string, n int, rules []RateRule) (admitted int, wait time.Duration, paused bool, err error)
	// PauseCalls pauses the scope for min, doubled for each consecutive pause (one that starts
	// within reset of the previous pause's end) up to max, and returns the pause and its number
	// in the row (strike). While a pause runs it changes nothing and returns the time left with
	// strike 0.
	PauseCalls(ctx context.Context, corpID, path string, min, max, reset time.Duration) (wait time.Duration, strike int, err error)
}

// RateCeiling is a frequency limit: at most Calls calls in any window of length Per.
type RateCeiling struct {
	Calls int
	Per   time.Duration
}

// RateLimiterOption configures NewRateLimiter. A nil RateLimiterOption is ignored.
type RateLimiterOption func(*rateConfig) error

type rateConfig struct {
	store                    RateStore
	paths                    map[string][]RateCeiling // "" for every other path
	ip                       []RateCeiling
	margin                   float64
	pauseMin, pauseMax, rset time.Duration
}

// WithRateStore sets where the limiter keeps its state (default: in this process). Give every
// replica the same shared store, cursor/redis's Store, so that they share each corp's budget and
// its pauses. On such a store a busy path fetches up to 16 calls ahead, valid 100 ms (see
// NewRateLimiter).
func WithRateStore(s RateStore) RateLimiterOption {
	return func(c *rateConfig) error {
		if s == nil || isNilPointer(s) {
			return invalidf("nil RateStore")
		}
		c.store = s
		return nil
	}
}

// WithRateCeilings sets the ceilings per corp of calls to path, or of every path without ceilings
// of its own when path is "" (default: DefaultCallsPerMinute a minute and DefaultCallsPerHour an
// hour, doc 90454). No ceilings: calls to path are not throttled, but a 45009 still pauses them.
// Tests scale them down to match kftest's limits.
func WithRateCeilings(path string, ceilings ...RateCeiling) RateLimiterOption {
	return func(c *rateConfig) error {
		if path != "" && !strings.HasPrefix(path, "/") {
			return invalidf("rate ceilings: path %q does not start with /", path)
		}
		if err := checkCeilings(ceilings); err != nil {
			return err
		}
		c.paths[path] = append([]RateCeiling(nil), ceilings...)
		return nil
	}
}

// WithIPRateCeilings sets the ceilings per calling IP of calls to each path, whatever the corp
// (default: DefaultIPCallsPerMinute a minute, doc 90454); none turns them off. They are counted in
// this process over every corp whose Client uses the limiter: give the Clients (or Channels) of
// several corps in one process the same limiter. Processes that share one egress IP (NAT) should
// divide them.
func WithIPRateCeilings(ceilings ...RateCeiling) RateLimiterOption {
	return func(c *rateConfig) error {
		if err := checkCeilings(ceilings); err != nil {
			return err
		}
		c.ip = append([]RateCeiling(nil), ceilings...)
		return nil
	}
}

// WithRateMargin sets the safety margin m under every ceiling (default DefaultRateMargin, 5 %), in
// (0, 0.5]: calls flow at (1-m) of a ceiling, and a burst after a quiet spell adds at most m/2 of
// it, so no window of the ceiling's length holds more than (1-m/2) of it even when the calls of
// several replicas reach WeCom a little out of order.
func WithRateMargin(m float64) RateLimiterOption {
	return func(c *rateConfig) error {
		if !(m > 0 && m <= 0.5) {
			return invalidf("rate margin %v not in (0, 0.5]", m)
		}
		c.margin = m
		return nil
	}
}

// WithRatePause sets how a 45009 pauses the API path for the corp: min for the first (default
// DefaultPauseMin, 1 min), doubled for each consecutive one up to max (DefaultPauseMax, 1 h); a
// 45009 more than reset after the previous pause ended (DefaultPauseReset, 10 min) starts again from
// min.
func WithRatePause(min, max, reset time.Duration) RateLimiterOption {
	return func(c *rateConfig) error {
		if min < time.Millisecond || max < min || reset < 0 {
			return invalidf("rate pause: need 1ms ≤ min ≤ max and reset ≥ 0, got %v, %v, %v", min, max, reset)
		}
		c.pauseMin, c.pauseMax, c.rset = min, max, reset
		return nil
	}
}

func checkCeilings(cs []RateCeiling) error {
	for _, c := range cs {
		if c.Calls < 1 || c.Per <= 0 {
			return invalidf("rate ceiling %d per %v: want Calls ≥ 1 and Per > 0", c.Calls, c.Per)
		}
	}
	return nil
}

// NewRateLimiter returns the RateLimiter of this package. Per corp and API path it keeps calls
// under WeCom's ceilings less a safety margin (WithRateCeilings, WithRateMargin), and under the
// per-IP ceilings over all corps (WithIPRateCeilings), with GCRA. Calls of a higher Priority go
// first: within a process strictly, and across processes because lower priorities may use only
// part of the burst (retries half, background a quarter). A 45009 reported with Pause stops the
// path for the corp with backoff (WithRatePause). With WithRateStore(cursor/redis's Store) the
// budget and the pauses are shared by every replica; without it they are this process's.
//
// On a shared store, an API call that finds nobody waiting makes one store call, and calls that
// queue share one. A busy corp and path also fetches calls ahead: each store call asks for as many
// more as the path saw in the previous 100 ms, at most 16, and later calls (of the same priority or
// a higher one) take them without a store call for 100 ms, after which the unused ones are dropped.
// So a replica holds at most 16 calls of a corp's budget per path unused, for at most 100 ms; a path
// that sees one call per 100 ms or fewer fetches nothing ahead. A 45009 reported to this limiter's
// Pause drops them at once, but after another replica's 45009 this one may still send up to 100 ms
// of the calls it fetched ahead.
//
// Store failures are not read as "go": Wait returns them and the call fails (a Channel retries it).
// It does no I/O and starts no goroutine until calls wait.
func NewRateLimiter(opts ...RateLimiterOption) (RateLimiter, error) {
	c := rateConfig{
		paths: map[string][]RateCeiling{"": {
			{Calls: DefaultCallsPerMinute, Per: time.Minute},
			{Calls: DefaultCallsPerHour, Per: time.Hour},
		}},
		ip:       []RateCeiling{{Calls: DefaultIPCallsPerMinute, Per: time.Minute}},
		margin:   DefaultRateMargin,
		pauseMin: DefaultPauseMin,
		pauseMax: DefaultPauseMax,
		rset:     DefaultPauseReset,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	l := &rateLimiter{
		store: c.store,
		pause: [3]time.Duration{c.pauseMin, c.pauseMax, c.rset},
		rules: make(map[string][numPriorities][]RateRule, len(c.paths)),
		gates: make(map[gateKey]*gate),
	}
	if l.store == nil {
		l.store = newMemRateStore()
	}
	_, local := l.store.(*memRateStore)
	l.prefetch = !local // fetching ahead saves round trips to a shared store only
	for path, cs := range c.paths {
		l.rules[path] = gcraRules(cs, c.margin)
	}
	if len(c.ip) > 0 {
		l.ip = newMemRateStore()
		l.ipRules = gcraRules(c.ip, c.margin)
	}
	return l, nil
}

// gcraRules turns ceilings into GCRA rules per priority. A ceiling of C calls per P with margin m
// flows at C·(1-m) per P (Interval = P / (C·(1-m))) with a burst of b = max(1, ⌊C·m/2⌋) calls
// (Tolerance = b·Interval). GCRA admits at most P/Interval + b calls in any window of length P,
// which is C·(1-m/2) ≤ C (and at most C when b is 1). Retries may use half the burst, background
// calls a quarter (never less than one Interval), so that they wait while fresh calls use it.
func gcraRules(cs []RateCeiling, margin float64) [numPriorities][]RateRule {
	var out [numPriorities][]RateRule
	for _, c := range cs {
		interval := time.Duration(math.Ceil(float64(c.Per) / (float64(c.Calls) * (1 - margin))))
		burst := max(1, int(math.Floor(float64(c.Calls)*margin/2)))
		tol := time.Duration(burst) * interval
		for p := range numPriorities {
			t := max(tol>>p, interval) // fresh: all, retry: a half, background: a quarter
			out[p] = append(out[p], RateRule{Interval: interval, Tolerance: t})
		}
	}
	return out
}
