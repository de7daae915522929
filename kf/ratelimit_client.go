package kf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-resty/resty/v2"
)

// WithRateLimiter sets the limiter every call of the client waits on (default: NewRateLimiter()
// with WeCom's ceilings, in this process). Give the replicas of a bot one shared through Redis
// (NewRateLimiter(WithRateStore(store)) with cursor/redis's Store; a Channel on such Stores does it
// by itself; a busy path then fetches up to 16 calls ahead, valid 100 ms, see NewRateLimiter), and
// the Clients of several corps in one process the same limiter. To not throttle
// at all but still pause after a 45009, use NewRateLimiter(WithRateCeilings(""),
// WithIPRateCeilings()).
func WithRateLimiter(l RateLimiter) ClientOption {
	return func(c *clientConfig) error {
		if l == nil || isNilPointer(l) {
			return invalidf("nil RateLimiter")
		}
		c.limiter = l
		return nil
	}
}

// clientLimits is a Client's side of rate limiting: the limiter and what the Channel's Stats
// report.
type clientLimits struct {
	limiter RateLimiter
	// rateLimited counts 45009 answers; pauses the pauses they started (strike > 0); waitNanos
	// the time calls spent in Wait.
	rateLimited, pauses, waitNanos atomic.Int64
}

// waitRate is a resty before-request hook, so it runs before every attempt: it waits for the
// limiter (r.URL is still the API path then). Its error (ctx's, ErrThrottled, the store's) ends the
// call without a retry. The time spent counts in Stats.RateLimitWait, the store's round trip
// included, so a shared store shows its cost.
func (c *Client) waitRate(_ *resty.Client, r *resty.Request) error {
	ctx, path := r.Context(), r.URL
	p := priorityOf(ctx)
	if path == pathGetToken {
		p = PriorityFresh // the token serves every call, whichever call found it missing
	}
	start := time.Now()
	err := c.limits.limiter.Wait(ctx, c.corpID, path, p)
	d := time.Since(start)
	c.limits.waitNanos.Add(int64(d))
	c.rateWaited(ctx, path, d)
	if err != nil && !errors.Is(err, ErrThrottled) && ctx.Err() == nil {
		return fmt.Errorf("kf: rate limiter: %w", err)
	}
	if err == nil {
		if guard, ok := ctx.Value(callGuardKey{}).(func() error); ok {
			err = guard()
		}
	}
	return err
}

type callGuardKey struct{}

// withCallGuard returns ctx under which every attempt of the client's calls runs guard after
// waiting for the limiter, just before it goes out, and fails with guard's error instead of going.
// The Replier checks its lease there: the wait may be long (a pause), and a replica that lost the
// account meanwhile must not send.
func withCallGuard(ctx context.Context, guard func() error) context.Context {
	return context.WithValue(ctx, callGuardKey{}, guard)
}

// noteRateLimited reports a 45009 answer to the limiter, which pauses path for the corp, and logs
// and counts it.
func (c *Client) noteRateLimited(ctx context.Context, path string, err error) {
	if ErrorCode(err) != codeRateLimited {
		return
	}
	c.limits.rateLimited.Add(1)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rateStoreTimeout)
	d, strike, perr := c.limits.limiter.Pause(pctx, c.corpID, path)
	cancel()
	switch {
	case perr != nil:
		c.log.Warn("kf: 45009 (frequency limit); the pause could not be recorded", "path", path, "err", perr)
	case strike > 0:
		c.limits.pauses.Add(1)
		c.ratePaused(ctx, path)
		c.log.Warn("kf: 45009 (frequency limit): calls paused for the corp", "path", path, "pause", d, "strike", strike)
	default:
		c.log.Debug("kf: 45009 during a pause (a call in flight when it began)", "path", path, "left", d)
	}
}

// rateCounts returns the client's rate limiting counters for Stats.
func (c *Client) rateCounts() (limited, pauses int64, wait time.Duration) {
	return c.limits.rateLimited.Load(), c.limits.pauses.Load(), time.Duration(c.limits.waitNanos.Load())
}

// leaseGuard is the Replier's call guard (withCallGuard): the lease, checked again right before a
// send goes out.
func (r *replier) leaseGuard() error {
	if !r.s.valid() {
		r.failure = errLeaseLost
		return errLeaseLost
	}
	return nil
}

// notSent reports a call failure that proves nothing went out: the rate limiter held it
// (ErrThrottled) or the call guard refused it.
func notSent(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, errLeaseLost)
}
