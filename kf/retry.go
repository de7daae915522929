package kf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"syscall"
	"time"
)

// RetryError is a handler's request to be run again later for the same message: return
// Retry(err) or RetryAfter(d, err) from OnMessage or OnEvent. The message keeps its place: the
// customer's later messages wait behind it, other customers do not. Reruns go on with backoff until
// the retry horizon (WithRetryHorizon), after which the message goes to the dead-letter hook
// (OnDeadLetter) and is marked done.
type RetryError struct {
	// After is the earliest time to run again; zero uses the Channel's backoff.
	After time.Duration
	// Err is why (it reaches the dead-letter hook if the horizon passes).
	Err error
}

// Error says a retry was requested, with the cause if any.
func (e *RetryError) Error() string {
	if e.Err == nil {
		return "kf: retry requested"
	}
	return "kf: retry requested: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RetryError) Unwrap() error { return e.Err }

// Retry asks the Channel to run the handler again for the same message, after the Channel's
// backoff. Use it for failures worth retrying that the Channel cannot recognise on its own (it
// already retries WeCom's -1, 45009 and 45033 answers, network errors and handler timeouts).
func Retry(err error) error { return &RetryError{Err: err} }

// RetryAfter is Retry with a delay of at least d (for example a model's Retry-After header).
func RetryAfter(d time.Duration, err error) error { return &RetryError{After: max(d, 0), Err: err} }

// ErrHandlerTimeout is the reason recorded when a handler ran past WithHandlerTimeout: it is
// retried like a transient failure.
var ErrHandlerTimeout = errors.New("kf: handler timed out")

// transient reports failures worth running a handler again for: WeCom busy, over a rate or
// concurrency limit, network failures of this package's client or of the handler's own calls,
// and handler timeouts. Context cancellation is not transient: it means the Channel is stopping
// or the lease was lost, and is handled as such.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var re *RetryError
	if errors.As(err, &re) {
		return true
	}
	if errors.Is(err, ErrHandlerTimeout) {
		return true
	}
	if errors.Is(err, ErrSystemBusy) || errors.Is(err, ErrConcurrencyLimit) || errors.Is(err, ErrRateLimited) {
		return true
	}
	var req *RequestError
	if errors.As(err, &req) {
		return !errors.Is(req.Err, context.Canceled)
	}
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode >= 500 || he.StatusCode == 429 // a proxy or gateway in trouble
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // the handler's own call timed out
	}
	var ne net.Error
	var ue *url.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe), errors.As(err, &ue), errors.As(err, &ne):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// retryAfter returns the delay a RetryError in err asks for (0 when none).
func retryAfter(err error) time.Duration {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After
	}
	return 0
}

// panicError is a handler's panic, turned into an error, with the stack it panicked on (logged).
type panicError struct {
	v     any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("kf: handler panicked: %v", p.v) }

// backoff is a jittered exponential wait between retries of store and API errors.
type backoff struct {
	min, max, cur time.Duration
}

func (ch *Channel) newBackoff() *backoff {
	return &backoff{min: ch.cfg.backoffMin, max: ch.cfg.backoffMax}
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return jitter(b.cur)
}

// jitter spreads d over [d/2, d] ("equal jitter"), so that many waiters do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// wait sleeps for the next backoff; it reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryDelay is the wait before the attempt-th rerun of a handler (attempt ≥ 1): capped
// exponential backoff with jitter between WithRetryBackoff's bounds, or longer if the handler
// asked for it.
func (ch *Channel) retryDelay(attempt int, err error) time.Duration {
	d := ch.cfg.retryMin
	for i := 1; i < attempt && d < ch.cfg.retryMax; i++ {
		d *= 2
	}
	d = jitter(min(d, ch.cfg.retryMax))
	return max(d, retryAfter(err), time.Millisecond)
}
