package kf

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/wxkf/wxkf/media"
)

// ChannelOption configures a Channel. A nil ChannelOption is ignored; an invalid value makes
// NewChannel fail with an error wrapping ErrInvalidArgument.
type ChannelOption func(*channelConfig) error

type channelConfig struct {
	stores       Stores
	stateDir     string
	logger       *slog.Logger
	workers      int
	skipHistory  bool
	pollEvery    time.Duration
	pollAccounts []string
	encoder      media.AMREncoder
	decoder      media.AMRDecoder
	now          func() time.Time
	clientOpts   []ClientOption
	client       *Client
	leaseTTL     time.Duration
	handlerTO    time.Duration
	retryMin     time.Duration
	retryMax     time.Duration
	retryHorizon time.Duration
	queueBytes   int64
	fetchClient  *http.Client
	fetchTO      time.Duration
	fetchPrivate bool
	checkState   bool
	backoffMin   time.Duration
	backoffMax   time.Duration
	maxAhead     int // msgids a session remembers ahead before it stops pulling (maxAhead; tests lower it)
	marker       string
	replayWindow time.Duration
	burstWindow  time.Duration
	tel          telemetryConfig
}

// Defaults of the Channel options.
const (
	// DefaultWorkers is how many handlers run at once across customers.
	DefaultWorkers = 16
	// DefaultHandlerTimeout bounds one OnMessage or OnEvent call.
	DefaultHandlerTimeout = 5 * time.Minute
	// DefaultRetryHorizon is how long a message whose handler keeps failing transiently (WeCom busy
	// or unreachable, a handler timeout, a handler asking to retry) is retried before it goes to
	// the dead-letter hook: long enough to ride out an outage of WeCom or of a model provider,
	// short enough that an answer still helps the customer.
	DefaultRetryHorizon = 15 * time.Minute
	// DefaultRetryMin and DefaultRetryMax bound the jittered exponential backoff between reruns.
	DefaultRetryMin = time.Second
	DefaultRetryMax = time.Minute
	// DefaultQueueBytes bounds the estimated memory of the messages held in queues, across
	// accounts and customers; one customer may hold a quarter of it.
	DefaultQueueBytes = 64 << 20
	// DefaultLeaseTTL is the lease time per account (renewed every third of it).
	DefaultLeaseTTL = 30 * time.Second
	// DefaultReplayWindow is how far a callback's signed timestamp may be from the Channel's clock.
	DefaultReplayWindow = 30 * time.Minute
	// DefaultFetchTimeout bounds Replier.ImageURL's download (not the upload and send after it).
	DefaultFetchTimeout = 15 * time.Second
)

// WithStores sets where cursors, done msgids, leases and reply records live: cursor.OpenDir for one
// process, cursor/redis for several replicas sharing one Redis. The default opens cursor.OpenDir
// on the state directory (WithStateDir). A Stores that implements TokenStore also shares the
// access token between replicas (unless WithClient or a WithClientOptions(WithTokenStore) says
// otherwise), and one that implements RateStore (cursor/redis) the rate limiter, with WeCom's
// ceilings (unless WithClient or a WithClientOptions(WithRateLimiter) says otherwise). The Channel
// does not close stores it was given.
func WithStores(s Stores) ChannelOption {
	return func(c *channelConfig) error {
		if s == nil {
			return invalidf("WithStores(nil)")
		}
		c.stores = s
		return nil
	}
}

// WithStateDir sets the directory of the default file stores: "tmp" unless set, holding
// wechatcom_kf_cursors.json (the cursor file of chatgpt-on-wechat's wechatcom_kf channel, so its
// users keep their cursors). Ignored with WithStores.
func WithStateDir(dir string) ChannelOption {
	return func(c *channelConfig) error {
		if dir == "" {
			return invalidf(`WithStateDir("")`)
		}
		c.stateDir = dir
		return nil
	}
}

// WithChannelLogger sets the logger (discarded by default). The client logs through it too unless
// WithClient is used. Levels: Info for lifecycle, Warn for a failure that is retried, Error for a
// message given up (dead letter) or a reply suppressed.
func WithChannelLogger(l *slog.Logger) ChannelOption {
	return func(c *channelConfig) error {
		if l == nil {
			return invalidf("WithChannelLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithWorkers sets how many handlers run at once across customers (default DefaultWorkers, 16).
// One customer's messages always run one at a time, in order.
func WithWorkers(n int) ChannelOption {
	return func(c *channelConfig) error {
		if n < 1 || n > 10000 {
			return invalidf("WithWorkers(%d): want 1..10000", n)
		}
		c.workers = n
		return nil
	}
}

// WithSkipHistory sets whether, on an account's first sync (no stored cursor), messages sent
// before the channel first started are skipped (default true). Every later message is
// dispatched, including the one whose callback started that first sync. The boundary is stored
// with the cursors, so a restart before the first cursor is saved keeps the same boundary.
func WithSkipHistory(on bool) ChannelOption {
	return func(c *channelConfig) error { c.skipHistory = on; return nil }
}

// WithPollInterval makes the channel pull the given accounts every d even without callbacks (a
// safety net for lost callbacks; off by default). Accounts seen in callbacks and accounts with
// stored state are polled too. sync_msg without a callback token is strictly rate-limited by
// WeCom: keep d in minutes. Every account with stored state is pulled once at start-up whether or
// not polling is on.
func WithPollInterval(d time.Duration, openKfIDs ...string) ChannelOption {
	return func(c *channelConfig) error {
		if d < time.Second {
			return invalidf("WithPollInterval(%s): want ≥ 1s", d)
		}
		c.pollEvery, c.pollAccounts = d, openKfIDs
		return nil
	}
}

// WithAMREncoder sets the encoder Replier.Voice uses for WAV/MP3 input (e.g. media/amrnb). AMR
// input is split without one.
func WithAMREncoder(enc media.AMREncoder) ChannelOption {
	return func(c *channelConfig) error { c.encoder = enc; return nil }
}

// WithAMRDecoder sets the decoder DownloadVoiceWAV uses (e.g. media/amrnb).
func WithAMRDecoder(dec media.AMRDecoder) ChannelOption {
	return func(c *channelConfig) error { c.decoder = dec; return nil }
}

// WithChannelClock sets the clock (tests). It drives skip-history, the quota's 48 h window, the
// welcome code's 20 s window, the retry horizon and the callback replay window. Waits (backoffs,
// lease renewals) still take real time.
func WithChannelClock(now func() time.Time) ChannelOption {
	return func(c *channelConfig) error {
		if now == nil {
			return invalidf("WithChannelClock(nil)")
		}
		c.now = now
		return nil
	}
}

// WithClientOptions passes options to the Client the Channel creates (e.g. WithBaseURL for
// kftest, WithHTTPClient, WithRetry).
func WithClientOptions(opts ...ClientOption) ChannelOption {
	return func(c *channelConfig) error { c.clientOpts = append(c.clientOpts, opts...); return nil }
}

// WithClient makes the Channel use an existing Client (its corp id must match Config.CorpID).
// WithClientOptions cannot be given with it (an error): configure the Client with NewClient.
func WithClient(cl *Client) ChannelOption {
	return func(c *channelConfig) error {
		if cl == nil {
			return invalidf("WithClient(nil)")
		}
		c.client = cl
		return nil
	}
}

// WithHandlerTimeout bounds each OnMessage/OnEvent call (default DefaultHandlerTimeout, 5 min). A
// handler that runs past it is retried like a transient failure (see WithRetryHorizon).
func WithHandlerTimeout(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d <= 0 {
			return invalidf("WithHandlerTimeout(%s): want > 0", d)
		}
		c.handlerTO = d
		return nil
	}
}

// WithRetryHorizon sets how long a message whose handler fails transiently is retried before it
// goes to the dead-letter hook (default DefaultRetryHorizon, 15 min), counted from its first
// attempt in this process. Transient: WeCom busy or over a limit (-1, 45009, 45033), network
// errors (WeCom's or the handler's own), handler timeouts, a store outage while replying, and a
// handler returning Retry or RetryAfter. While a message is retried, its customer's later
// messages wait behind it; other customers do not.
func WithRetryHorizon(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d < 0 {
			return invalidf("WithRetryHorizon(%s): want ≥ 0", d)
		}
		c.retryHorizon = d
		return nil
	}
}

// WithRetryBackoff sets the bounds of the jittered exponential backoff between reruns of a handler
// (defaults DefaultRetryMin, 1 s, and DefaultRetryMax, 1 min).
func WithRetryBackoff(min, max time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if min <= 0 || max < min {
			return invalidf("WithRetryBackoff(%s, %s): want 0 < min ≤ max", min, max)
		}
		c.retryMin, c.retryMax = min, max
		return nil
	}
}

// WithQueueBytes bounds the estimated memory of the pulled messages waiting in queues (default
// DefaultQueueBytes, 64 MiB). One customer's messages may hold a quarter of it; past that (or past
// the total), further messages are not kept in memory but pulled again, in order, when there is
// room, so one customer's flood neither exhausts memory nor delays the other customers. Besides
// the queues, each account stops pulling once it remembers 50,000 pulled msgids ahead of its oldest
// unfinished message (checked after each page, so at most one page of up to 1,000 more).
func WithQueueBytes(n int64) ChannelOption {
	return func(c *channelConfig) error {
		if n < 64<<10 {
			return invalidf("WithQueueBytes(%d): want ≥ 64 KiB", n)
		}
		c.queueBytes = n
		return nil
	}
}

// WithLeaseTTL sets the lease time per account (default DefaultLeaseTTL, 30 s; renewed every third
// of it). A replica that dies holds an account at most this long; one that pauses longer loses
// the account, drops its queue and writes nothing more.
func WithLeaseTTL(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d < 100*time.Millisecond {
			return invalidf("WithLeaseTTL(%s): want ≥ 100ms", d)
		}
		c.leaseTTL = d
		return nil
	}
}

// WithFetchClient sets the HTTP client Replier.ImageURL downloads with, used as given and never
// modified. The default client refuses internal addresses (see WithFetchPrivateAddresses); a
// client given here replaces that guard with its own policy.
func WithFetchClient(hc *http.Client) ChannelOption {
	return func(c *channelConfig) error {
		if hc == nil {
			return invalidf("WithFetchClient(nil)")
		}
		c.fetchClient = hc
		return nil
	}
}

// WithFetchTimeout bounds Replier.ImageURL's download (default DefaultFetchTimeout, 15 s). The
// fitting, upload and send after it have their own bounds.
func WithFetchTimeout(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d <= 0 {
			return invalidf("WithFetchTimeout(%s): want > 0", d)
		}
		c.fetchTO = d
		return nil
	}
}

// WithFetchPrivateAddresses lets the default fetch client of Replier.ImageURL connect to loopback,
// private, link-local and carrier-grade NAT addresses (default false: refused with
// ErrForbiddenAddress). Turn it on only when every URL passed to ImageURL is trusted.
func WithFetchPrivateAddresses(allow bool) ChannelOption {
	return func(c *channelConfig) error { c.fetchPrivate = allow; return nil }
}

// WithStateCheck sets whether every Replier asks service_state/get before its first send when the
// session state is not known (default false). Without it, the state comes from what the Channel
// learns for free — session_status_change events, Handoff, WeCom's 95018 answers — and a send into
// a human servicer's session is refused by WeCom and reported as a *ReplyError all the same; the
// check costs one more API round trip on the way to most first replies. Replier.Ready always asks
// when the state is not known.
func WithStateCheck(on bool) ChannelOption {
	return func(c *channelConfig) error { c.checkState = on; return nil }
}

// WithTruncationMarker sets what ends a text cut to fit the 5-message quota (default "…").
func WithTruncationMarker(s string) ChannelOption {
	return func(c *channelConfig) error {
		if len(s) > 64 {
			return invalidf("WithTruncationMarker: at most 64 bytes")
		}
		c.marker = s
		return nil
	}
}

// WithReplayWindow sets how far a callback's signed timestamp may be from the Channel's clock
// (default DefaultReplayWindow, 30 min; 0 turns the check off). A callback outside it is refused
// with 403, so a captured callback cannot be replayed later. WeCom sends callbacks at once and
// retries them within seconds; the default leaves room for clock skew.
func WithReplayWindow(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d < 0 || d > 0 && d < time.Minute {
			return invalidf("WithReplayWindow(%s): want 0 (off) or ≥ 1m", d)
		}
		c.replayWindow = d
		return nil
	}
}

// withBackoff sets the store/API error backoff bounds (tests).
func withBackoff(min, max time.Duration) ChannelOption {
	return func(c *channelConfig) error { c.backoffMin, c.backoffMax = min, max; return nil }
}

// withMaxAhead lowers the msgids a session remembers ahead of its oldest unfinished message
// (maxAhead) so that a test can reach the bound (tests).
func withMaxAhead(n int) ChannelOption {
	return func(c *channelConfig) error { c.maxAhead = n; return nil }
}

// WithBurstWindow merges a customer's messages that arrive within d of each other into one handler
// call (off by default; 1.5 s is typical for a person typing several short messages). The handler
// gets the burst's last message with Message.Burst listing all of them, oldest first, and its
// replies count against the quota after that last message. A message is handled once no further
// message of its customer was pulled for d, so every reply waits at least d. The messages of a
// burst are marked done together when the call succeeds; a rerun (a retry, a replay after a crash)
// answers exactly the same burst, with the same reply record.
func WithBurstWindow(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d < 0 || d > time.Minute {
			return invalidf("WithBurstWindow(%s): want 0 (off) up to 1m", d)
		}
		c.burstWindow = d
		return nil
	}
}
