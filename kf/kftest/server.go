package kftest

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Default credentials of a Server. They are fixed, syntactically valid test values (a "ww" corpid, a
// 43-character corpsecret, a callback Token of letters and digits ≤ 32, a 43-character
// EncodingAESKey that decodes to 32 bytes), exposed by the Server's accessors.
const (
	DefaultCorpID         = "ww7e3a9c0b5d1f2468"
	DefaultSecret         = "kftestSecretAbCdEfGhIjKlMnOpQrStUvWxYz01234"
	DefaultCallbackToken  = "kftestCallbackToken"
	DefaultEncodingAESKey = "g1zfm2lRphZEBWtwRgN0QzoH8yhr0uMM9ZmTavgZgfY"
)

// Limits of the fake that are not WeCom facts but keep it safe and fast.
const (
	// MaxRequestBytes caps a JSON request body; a larger one is answered with CodeContentTooLong.
	MaxRequestBytes = 1 << 20
	// MaxPageSize is WeCom's sync_msg limit maximum and the default page size (§4).
	MaxPageSize = 1000
	// DefaultTokenTTL is the access_token lifetime gettoken reports as expires_in (§3).
	DefaultTokenTTL = 7200 * time.Second
	// SyncTokenTTL is how long a callback Token is accepted by sync_msg (§1).
	SyncTokenTTL = 10 * time.Minute
	// MediaTTL is how long an uploaded media_id stays valid (§9).
	MediaTTL = 72 * time.Hour
	// HistoryWindow is how far back sync_msg without a cursor starts (§4).
	HistoryWindow = 72 * time.Hour
	// ReplyWindow is how long after the customer's latest message send_msg is allowed (§6).
	ReplyWindow = 48 * time.Hour
	// QuotaPerWindow is how many send_msg are allowed after the customer's latest message (§6).
	QuotaPerWindow = 5
	// WelcomeCodeTTL is the validity of an enter_session welcome_code and of a session-end msg_code (§6).
	WelcomeCodeTTL = 20 * time.Second
	// QueueCodeTTL is the validity of the msg_code returned by trans to states 2 and 3 (§6).
	QueueCodeTTL = 48 * time.Hour
	// CallbackTimeout is how long WeCom waits for a callback's HTTP 200 (§1).
	CallbackTimeout = 5 * time.Second
)

type config struct {
	corpID, secret          string
	cbToken, cbAESKey       string
	clock                   func() time.Time
	pageSize                int
	tokenTTL                time.Duration
	seed                    int64
	seeded                  bool
	logger                  *slog.Logger
	callbackURL             string
	callbackTimeout         time.Duration
	callbackAttempts        int
	callbackTransport       http.RoundTripper
	welcomeTTL, queueTTL    time.Duration
	defaultAccountName      string
	corpQualificationBinded bool
	invalid                 []string // options given invalid values
}

func (c *config) reject(format string, args ...any) {
	c.invalid = append(c.invalid, fmt.Sprintf(format, args...))
}

// Option configures a Server. A nil Option is ignored. An Option given an invalid value (named on
// each) makes NewServer panic with a message naming it, as httptest.NewServer panics when it cannot
// listen: NewServer has no error to return, and a test's setup mistake must not pass silently.
type Option func(*config)

// WithCorpID sets the corpid gettoken accepts and callbacks are encrypted for (default
// DefaultCorpID; must not be empty).
func WithCorpID(corpID string) Option {
	return func(c *config) {
		if corpID == "" {
			c.reject("WithCorpID: empty corpid")
			return
		}
		c.corpID = corpID
	}
}

// WithSecret sets the corpsecret gettoken accepts (default DefaultSecret; must not be empty).
func WithSecret(secret string) Option {
	return func(c *config) {
		if secret == "" {
			c.reject("WithSecret: empty secret")
			return
		}
		c.secret = secret
	}
}

// WithCallbackCrypto sets the callback Token and EncodingAESKey used to sign and encrypt callbacks
// (defaults DefaultCallbackToken, DefaultEncodingAESKey). NewServer panics if the key is not 43
// characters of base64, as httptest panics on a bad listener: it is a programming error.
func WithCallbackCrypto(token, encodingAESKey string) Option {
	return func(c *config) { c.cbToken, c.cbAESKey = token, encodingAESKey }
}

// WithClock sets the time source for every rule that depends on time (token expiry, 48 h window,
// 3-day sync window, code validity, media expiry, statistics). Default time.Now; nil is invalid.
// See ManualClock. The function must be safe for concurrent use and must not call back into the
// Server.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.reject("WithClock: nil clock")
			return
		}
		c.clock = now
	}
}

// WithPageSize caps how many messages one sync_msg answer holds, whatever limit the request asks
// (default and maximum 1000; n must be 1..1000). Small pages make has_more paging easy to test.
func WithPageSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > MaxPageSize {
			c.reject("WithPageSize(%d): the page size must be 1..%d", n, MaxPageSize)
			return
		}
		c.pageSize = n
	}
}

// WithTokenTTL sets the access_token lifetime (default 7200 s, doc 91039; must be > 0).
func WithTokenTTL(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.reject("WithTokenTTL(%v): must be > 0", d)
			return
		}
		c.tokenTTL = d
	}
}

// WithSeed makes every random choice of the Server (ids, tokens, codes, fault injection) a
// deterministic function of seed and call order. Default: a random seed.
func WithSeed(seed int64) Option { return func(c *config) { c.seed, c.seeded = seed, true } }

// WithLogger sets the logger for the fake's own diagnostics (default: discard; nil is invalid).
// Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.reject("WithLogger: nil *slog.Logger")
			return
		}
		c.logger = l
	}
}

// WithCallbackURL makes the Server behave like WeCom pushing callbacks: every message added with
// AddMessage (and its helpers) triggers an asynchronous kf_msg_or_event delivery to url, retried up to
// 3 attempts in total when the answer is not HTTP 200 within CallbackTimeout (§1). Default: none
// (tests call Notify themselves). See also SetCallbackURL.
func WithCallbackURL(url string) Option { return func(c *config) { c.callbackURL = url } }

// WithCallbackTimeout sets how long a callback delivery waits for HTTP 200 (default 5 s, §1; must
// be > 0).
func WithCallbackTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.reject("WithCallbackTimeout(%v): must be > 0", d)
			return
		}
		c.callbackTimeout = d
	}
}

// WithCallbackTransport sets the http.RoundTripper used to deliver callbacks (default: a private
// http.Transport closed with the Server; nil is invalid).
func WithCallbackTransport(rt http.RoundTripper) Option {
	return func(c *config) {
		if rt == nil {
			c.reject("WithCallbackTransport: nil http.RoundTripper")
			return
		}
		c.callbackTransport = rt
	}
}

// WithCodeTTLs overrides the validity of welcome/session-end codes (default 20 s) and of queue codes
// (default 48 h); both must be > 0. Useful only to make expiry tests fast without a ManualClock.
func WithCodeTTLs(welcome, queue time.Duration) Option {
	return func(c *config) {
		if welcome <= 0 || queue <= 0 {
			c.reject("WithCodeTTLs(%v, %v): both must be > 0", welcome, queue)
			return
		}
		c.welcomeTTL, c.queueTTL = welcome, queue
	}
}

// WithChannelsBinding sets what get_corp_qualification answers as wechat_channels_binding (default false).
func WithChannelsBinding(bound bool) Option {
	return func(c *config) { c.corpQualificationBinded = bound }
}

func clampPage(n int) int { return max(1, min(n, MaxPageSize)) }

// Server is a running fake of the WeCom Customer Service API (an httptest.Server). All methods are
// safe for concurrent use. Create it with NewServer, always Close it.
type Server struct {
	cfg    config
	ts     *httptest.Server
	log    *slog.Logger
	routes map[string]*endpoint

	rngMu sync.Mutex
	rng   *rand.Rand

	cursorKey []byte

	mu         sync.Mutex
	pageSize   int
	faults     Faults
	tokens     map[string]*accessToken
	current    string
	accounts   map[string]*account
	accountIDs []string // creation order
	defaultKf  string
	customers  map[string]*customer
	codes      map[string]*eventCode
	media      map[string]*mediaItem
	calls      map[string]int
	sent       []Sent
	sentSignal chan struct{}
	rejected   []Rejection
	knowledge  knowledgeBase
	cbURL      string
	overrides  map[string]http.Handler // Handle, FailWith
	limits     map[string]RateLimit    // SetRateLimit, by path ("" for every path)
	limiters   map[string]*limiter

	obsMu     sync.Mutex
	observers map[int]func(Record)
	obsNext   int

	cbClient *http.Client
	cbCrypto callbackCrypto

	closing   chan struct{}
	closeOnce sync.Once
	bgMu      sync.Mutex
	bgClosed  bool
	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
}

// NewServer starts a fake WeCom API on a loopback httptest.Server with one kf account (OpenKfID).
// Point a client at URL(); Close the Server when done.
func NewServer(opts ...Option) *Server {
	cfg := config{
		corpID:             DefaultCorpID,
		secret:             DefaultSecret,
		cbToken:            DefaultCallbackToken,
		cbAESKey:           DefaultEncodingAESKey,
		clock:              time.Now,
		pageSize:           MaxPageSize,
		tokenTTL:           DefaultTokenTTL,
		callbackTimeout:    CallbackTimeout,
		callbackAttempts:   3,
		welcomeTTL:         WelcomeCodeTTL,
		queueTTL:           QueueCodeTTL,
		defaultAccountName: "kftest",
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if len(cfg.invalid) > 0 {
		panic("kftest: NewServer: invalid option: " + strings.Join(cfg.invalid, "; "))
	}
	if !cfg.seeded {
		var b [8]byte
		_, _ = crand.Read(b[:])
		cfg.seed = int64(binary.LittleEndian.Uint64(b[:]))
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.logger,
		rng:        rand.New(rand.NewPCG(uint64(cfg.seed), uint64(cfg.seed)^0x9e3779b97f4a7c15)),
		pageSize:   cfg.pageSize,
		tokens:     map[string]*accessToken{},
		accounts:   map[string]*account{},
		customers:  map[string]*customer{},
		codes:      map[string]*eventCode{},
		media:      map[string]*mediaItem{},
		calls:      map[string]int{},
		sentSignal: make(chan struct{}),
		observers:  map[int]func(Record){},
		closing:    make(chan struct{}),
		cbURL:      cfg.callbackURL,
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.cursorKey = []byte(s.randString(32, alnum))
	s.knowledge.init(s)
	cc, err := newCallbackCrypto(cfg.cbToken, cfg.cbAESKey, cfg.corpID)
	if err != nil {
		panic("kftest: NewServer: " + err.Error())
	}
	s.cbCrypto = cc
	rt := cfg.callbackTransport
	if rt == nil {
		rt = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	}
	s.cbClient = &http.Client{Transport: rt}
	s.defaultKf = s.addAccountLocked(cfg.defaultAccountName, "")
	s.routes = s.buildRoutes()
	s.ts = httptest.NewServer(s)
	return s
}

// URL is the base URL of the fake (http://127.0.0.1:port), to pass to a client's WithBaseURL.
func (s *Server) URL() string { return s.ts.URL }

// HTTPServer exposes the underlying httptest.Server (for its Client() or Listener).
func (s *Server) HTTPServer() *httptest.Server { return s.ts }

// Close stops callback deliveries, waits for them, and shuts the HTTP server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.bgMu.Lock()
		s.bgClosed = true
		s.bgMu.Unlock()
		s.bgCancel()
		close(s.closing)
		s.bg.Wait()
		s.ts.Close()
		s.cbClient.CloseIdleConnections()
	})
}

// CorpID is the corpid gettoken expects and callbacks carry as ToUserName / receiveid.
func (s *Server) CorpID() string { return s.cfg.corpID }

// Secret is the corpsecret gettoken expects.
func (s *Server) Secret() string { return s.cfg.secret }

// CallbackToken is the Token callbacks are signed with (§1, §2).
func (s *Server) CallbackToken() string { return s.cfg.cbToken }

// EncodingAESKey is the 43-character key callbacks are encrypted with (§2).
func (s *Server) EncodingAESKey() string { return s.cfg.cbAESKey }

// OpenKfID is the default kf account every helper without an explicit account uses.
func (s *Server) OpenKfID() string { return s.defaultKf }

// SetPageSize changes the sync_msg page size cap (clamped to 1..1000).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	s.pageSize = clampPage(n)
	s.mu.Unlock()
}

// SetCallbackURL sets (or with "" clears) the URL of automatic callback deliveries; see WithCallbackURL.
func (s *Server) SetCallbackURL(url string) {
	s.mu.Lock()
	s.cbURL = url
	s.mu.Unlock()
}

// Calls counts the requests received on path (e.g. "/cgi-bin/kf/sync_msg"), including failed and
// fault-injected ones.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

func (s *Server) now() time.Time { return s.cfg.clock() }

const (
	alnum    = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	idChars  = alnum + "_-"
	digits   = "0123456789"
	hexChars = "0123456789abcdef"
)

func (s *Server) randString(n int, alphabet string) string {
	b := make([]byte, n)
	s.rngMu.Lock()
	for i := range b {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	s.rngMu.Unlock()
	return string(b)
}

// chance reports true with probability p (deterministic under WithSeed for a given call order).
func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

func (s *Server) randDuration(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return time.Duration(s.rng.Int64N(int64(max) + 1))
}

// ManualClock is a settable clock for WithClock: time moves only when the test says so.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock standing at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now returns the clock's time; pass clk.Now to WithClock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
