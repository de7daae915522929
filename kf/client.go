package kf

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/go-resty/resty/v2"
)

// DefaultBaseURL is the WeCom API origin.
const DefaultBaseURL = "https://qyapi.weixin.qq.com"

// Defaults of the client options.
const (
	// DefaultTimeout bounds one HTTP attempt, reading the reply included.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxAttempts is how many times an idempotent call is tried on -1, 45033, a 5xx or a
	// network error.
	DefaultMaxAttempts = 3
	// DefaultRetryWait and DefaultRetryMaxWait bound the jittered exponential backoff between attempts.
	DefaultRetryWait    = 200 * time.Millisecond
	DefaultRetryMaxWait = 3 * time.Second
	// DefaultTokenRefreshMargin: a token this close to its expiry is refreshed before use
	// (x/oauth2's ReuseTokenSource does the same with 10 s; WeCom tokens live 7200 s).
	DefaultTokenRefreshMargin = 5 * time.Minute
	// MaxResponseBytes caps every JSON reply.
	MaxResponseBytes = 8 << 20
	// DefaultMaxDownloadBytes caps a media download. Uploads are at most 20 MB (§9), but media a
	// customer sent may be larger: such files are downloaded in Range chunks (doc 96486).
	DefaultMaxDownloadBytes = 64 << 20
)

// Client calls the WeCom Customer Service (微信客服) server API for one corpid and one secret (the
// secret of the self-built app that owns the kf accounts, doc 94677). It is safe for concurrent use.
//
// Every method takes a context first and fails fast on arguments WeCom would reject. Replies with
// errcode ≠ 0 are *APIError; see the package sentinels. Secrets never appear in errors or logs.
type Client struct {
	corpID           string
	secret           string
	rc               *resty.Client
	log              *slog.Logger
	tokens           *tokenSource
	maxAttempts      int
	maxDownloadBytes int64
	now              func() time.Time
	tel              *clientTel
	limits           clientLimits
}

// ClientOption configures NewClient. A nil ClientOption is ignored.
type ClientOption func(*clientConfig) error

type clientConfig struct {
	baseURL          string
	httpClient       *http.Client
	logger           *slog.Logger
	store            TokenStore
	maxAttempts      int
	wait, maxWait    time.Duration
	timeout          time.Duration
	margin           time.Duration
	maxDownloadBytes int64
	clock            func() time.Time
	tel              telemetryConfig
	limiter          RateLimiter
}

// WithBaseURL sets the API origin (default DefaultBaseURL); kftest servers and proxies use it.
// It must be an absolute http or https URL; a trailing slash is dropped.
func WithBaseURL(base string) ClientOption {
	return func(c *clientConfig) error {
		u, err := url.Parse(base)
		if err != nil {
			return fmt.Errorf("%w: base URL: %v", ErrInvalidArgument, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalidf("base URL %q is not an absolute http(s) URL", sanitizeURL(base))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return invalidf("base URL %q has a query or fragment", sanitizeURL(base))
		}
		c.baseURL = strings.TrimRight(base, "/")
		return nil
	}
}

// WithHTTPClient sets the *http.Client to send with (default: an http.Client on a clone of
// http.DefaultTransport that keeps up to 128 idle connections to the host). The client is copied:
// its settings are used, the caller's value is never modified. Its Timeout is replaced by
// WithTimeout's.
func WithHTTPClient(hc *http.Client) ClientOption {
	return func(c *clientConfig) error {
		if hc == nil {
			return invalidf("nil *http.Client")
		}
		cp := *hc
		c.httpClient = &cp
		return nil
	}
}

// WithLogger sets the logger (default: discard). The client logs retries and token refreshes at
// Warn/Info and each call at Debug, with API paths only — never a token, secret or query string.
func WithLogger(l *slog.Logger) ClientOption {
	return func(c *clientConfig) error {
		if l == nil {
			return invalidf("nil *slog.Logger")
		}
		c.logger = l
		return nil
	}
}

// WithTokenStore sets where access tokens are cached (default: NewMemoryTokenStore()). Give every
// replica the same shared store (cursor/redis) so they share one token.
func WithTokenStore(s TokenStore) ClientOption {
	return func(c *clientConfig) error {
		if s == nil || isNilPointer(s) {
			return invalidf("nil TokenStore")
		}
		c.store = s
		return nil
	}
}

// WithRetry sets how often an idempotent call is tried (maxAttempts ≥ 1, default
// DefaultMaxAttempts) on -1 (system busy), 45033 (concurrency limit), HTTP 5xx and network errors,
// and the bounds of the jittered exponential backoff between attempts (defaults DefaultRetryWait,
// DefaultRetryMaxWait). Waiting ends early when the context ends.
//
// Whatever is set here, send_msg and send_msg_on_event are retried only when the request carries a
// client msgid (WeCom rejects a second message with the same msgid, so the retry cannot reach the
// customer twice) or the connection was never made. A rejected token (40014, 42001, 41001) is
// refreshed and the call retried exactly once, on top of maxAttempts.
func WithRetry(maxAttempts int, wait, maxWait time.Duration) ClientOption {
	return func(c *clientConfig) error {
		if maxAttempts < 1 {
			return invalidf("retry: maxAttempts %d < 1", maxAttempts)
		}
		if wait < 0 || maxWait < wait {
			return invalidf("retry: need 0 ≤ wait ≤ maxWait, got %v and %v", wait, maxWait)
		}
		c.maxAttempts, c.wait, c.maxWait = maxAttempts, wait, maxWait
		return nil
	}
}

// WithTimeout bounds each HTTP attempt, reading the reply included (default DefaultTimeout). The
// whole call is bounded by the context.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) error {
		if d <= 0 {
			return invalidf("timeout %v ≤ 0", d)
		}
		c.timeout = d
		return nil
	}
}

// WithTokenRefreshMargin sets how long before its expiry a token is refreshed (default
// DefaultTokenRefreshMargin). A token whose whole life is shorter than twice the margin is
// refreshed at half its life.
func WithTokenRefreshMargin(d time.Duration) ClientOption {
	return func(c *clientConfig) error {
		if d < 0 {
			return invalidf("token refresh margin %v < 0", d)
		}
		c.margin = d
		return nil
	}
}

// WithMaxDownloadBytes caps a media download (default DefaultMaxDownloadBytes).
func WithMaxDownloadBytes(n int64) ClientOption {
	return func(c *clientConfig) error {
		if n <= 0 {
			return invalidf("max download bytes %d ≤ 0", n)
		}
		c.maxDownloadBytes = n
		return nil
	}
}

// WithClock sets the time source of the client's token bookkeeping (default time.Now): when a cached
// access token counts as expired or due for refresh (expires_in, doc 91039), when the credential
// cooldown after 40001/40013 ends, and the expiry of tokens in the default in-process TokenStore. A
// TokenStore passed with WithTokenStore keeps its own time. HTTP timeouts and retry backoff always
// use real time. Tests use it to expire tokens without sleeping; now must be safe for concurrent use.
func WithClock(now func() time.Time) ClientOption {
	return func(c *clientConfig) error {
		if now == nil {
			return invalidf("nil clock")
		}
		c.clock = now
		return nil
	}
}

// NewClient returns a client for corpID and the secret of the app that owns the kf accounts
// (§3, doc 91039). It validates its arguments and does no I/O. A nil option is ignored; an option
// with an invalid value makes NewClient fail with an error wrapping ErrInvalidArgument.
func NewClient(corpID, secret string, opts ...ClientOption) (*Client, error) {
	if err := checkCredential("corpID", corpID); err != nil {
		return nil, err
	}
	if err := checkCredential("secret", secret); err != nil {
		return nil, err
	}
	cfg := clientConfig{
		baseURL:          DefaultBaseURL,
		maxAttempts:      DefaultMaxAttempts,
		wait:             DefaultRetryWait,
		maxWait:          DefaultRetryMaxWait,
		timeout:          DefaultTimeout,
		margin:           DefaultTokenRefreshMargin,
		maxDownloadBytes: DefaultMaxDownloadBytes,
		clock:            time.Now,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.store == nil {
		cfg.store = &MemoryTokenStore{m: make(map[string]memoryToken), now: cfg.clock}
	}
	if cfg.httpClient == nil {
		cfg.httpClient = &http.Client{Transport: defaultTransport()}
	}
	if cfg.limiter == nil {
		cfg.limiter, _ = NewRateLimiter() // the defaults are valid
	}
	c := &Client{
		corpID:           corpID,
		secret:           secret,
		log:              cfg.logger,
		maxAttempts:      cfg.maxAttempts,
		maxDownloadBytes: cfg.maxDownloadBytes,
		now:              cfg.clock,
	}
	var terr error
	if c.tel, terr = newClientTel(cfg.tel); terr != nil {
		c.log.Warn("kf: telemetry instrument", "err", terr) // a no-op instrument stands in
	}
	c.limits.limiter = cfg.limiter
	c.tokens = &tokenSource{
		c:      c,
		store:  cfg.store,
		key:    tokenStoreKey(corpID, secret),
		margin: cfg.margin,
		// Enough for gettoken's own attempts and waits.
		flightTimeout: time.Duration(cfg.maxAttempts)*(cfg.timeout+cfg.maxWait) + cfg.timeout,
	}
	c.rc = c.newResty(cfg)
	return c, nil
}

// CorpID returns the corpid the client was made for.
func (c *Client) CorpID() string { return c.corpID }

func checkCredential(name, v string) error {
	if v == "" {
		return invalidf("%s is empty", name)
	}
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return invalidf("%s contains white space or control characters", name)
	}
	return nil
}

// defaultTransport is the transport of a Client without WithHTTPClient. All calls go to one host
// (qyapi.weixin.qq.com), from as many goroutines as the bot has handlers: net/http's default of 2
// idle connections per host would close and re-dial (a TLS handshake each) most of them.
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// isNilPointer reports an interface holding a nil pointer (a typed nil), which a nil check misses.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
