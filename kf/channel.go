package kf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxkf/wxkf/crypto"
	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/media"
)

// Config is what a Channel needs from the WeCom admin: the corp id, the secret of the app that
// may call the kf API, and the callback Token and EncodingAESKey (doc 94699).
type Config struct {
	CorpID         string
	Secret         string
	Token          string
	EncodingAESKey string
}

// Stores is the durable state a Channel keeps: cursors, done msgids and per-account leases.
// cursor.OpenDir (one process) and cursor/redis (several replicas) implement it. A Stores that
// also implements TokenStore shares the access token too.
type Stores interface {
	cursor.Store
	cursor.Dedup
	cursor.Locker
}

// Hook signatures.
type (
	// MessageHandler answers one customer message (origin 3). It is called in order per customer
	// and concurrently across customers. Its replies go through r; a returned error is logged and
	// counted, and the handler is retried (its sends then reuse their client msgids, so nothing
	// reaches the customer twice) only when the error is transient (ErrSystemBusy, network).
	MessageHandler func(ctx context.Context, m *Message, r Replier) error
	// EventHandler sees events (origin 4) and human servicers' messages (origin 5), in order per
	// customer. r can reply (subject to the same rules) where WeCom allows it.
	EventHandler func(ctx context.Context, m *Message, r Replier) error
	// WelcomeHandler returns the welcome for an enter_session event carrying a welcome_code: a
	// *Text or *Menu that the Channel sends with send_msg_on_event inside the code's 20 s window.
	// Nil content sends nothing.
	WelcomeHandler func(ctx context.Context, m *Message) (Content, error)
	// CallbackHandler sees callback events other than kf_msg_or_event (e.g.
	// kf_account_auth_change), after the 200 answer.
	CallbackHandler func(ctx context.Context, ev *crypto.Event)
)

// Channel is a WeCom customer-service bot endpoint: an http.Handler for the callback URL, a sync
// engine that pulls messages with durable cursors, and a dispatcher that calls OnMessage in order
// per customer. See the package documentation for the delivery guarantees.
type Channel struct {
	cfg    channelConfig
	client *Client
	crypto *crypto.Crypto
	stores Stores
	closer io.Closer // the stores NewChannel opened itself
	log    *slog.Logger
	now    func() time.Time
	start  time.Time // history boundary for skip-history

	onMessage  atomic.Pointer[MessageHandler]
	onEvent    atomic.Pointer[EventHandler]
	onWelcome  atomic.Pointer[WelcomeHandler]
	onCallback atomic.Pointer[CallbackHandler]

	// pullCtx ends when Shutdown starts: no more triggers or pulls. workCtx ends on a hard stop
	// (Shutdown's ctx expired, or a crash in tests): handlers and store writes are abandoned.
	pullCtx    context.Context
	stopPull   context.CancelFunc
	workCtx    context.Context
	stopWork   context.CancelFunc
	stopping   atomic.Bool
	shutdownMu sync.Mutex
	done       bool

	accMu    sync.Mutex
	accounts map[string]*account
	accWG    sync.WaitGroup // account loops
	bgMu     sync.Mutex
	bgClosed bool
	bgWG     sync.WaitGroup // callback hooks, poller

	disp   *dispatcher
	quota  *quotaBook
	states *stateCache
	stats  stats
}

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
	retries      int
	maxInflight  int
	httpClient   *http.Client
	fetchTO      time.Duration
	checkState   bool
	backoffMin   time.Duration
	backoffMax   time.Duration
	marker       string
}

// ChannelOption configures a Channel.
type ChannelOption func(*channelConfig) error

// WithStores sets where cursors, done msgids and leases live: cursor.OpenDir for one process,
// cursor/redis for several replicas sharing one Redis. The default opens cursor.OpenDir on the
// state directory (WithStateDir). A Stores that implements TokenStore also shares the access
// token between replicas (unless WithClient or a WithClientOptions(WithTokenStore) says otherwise).
// The Channel does not close stores it was given.
func WithStores(s Stores) ChannelOption {
	return func(c *channelConfig) error {
		if s == nil {
			return errors.New("kf: WithStores(nil)")
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
			return errors.New("kf: WithStateDir(\"\")")
		}
		c.stateDir = dir
		return nil
	}
}

// WithChannelLogger sets the logger (discarded by default). The client logs through it too unless
// WithClient is used.
func WithChannelLogger(l *slog.Logger) ChannelOption {
	return func(c *channelConfig) error {
		if l == nil {
			return errors.New("kf: WithChannelLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithWorkers sets how many handlers run at once across customers (default 16). One customer's
// messages always run one at a time, in order.
func WithWorkers(n int) ChannelOption {
	return func(c *channelConfig) error {
		if n < 1 || n > 10000 {
			return fmt.Errorf("kf: WithWorkers(%d): want 1..10000", n)
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
// safety net for lost callbacks; off by default). Accounts seen in callbacks are polled too.
// sync_msg without a callback token is strictly rate-limited by WeCom: keep d in minutes.
func WithPollInterval(d time.Duration, openKfIDs ...string) ChannelOption {
	return func(c *channelConfig) error {
		if d < time.Second {
			return fmt.Errorf("kf: WithPollInterval(%s): want ≥ 1s", d)
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

// WithChannelClock sets the clock (tests). It drives skip-history, the quota's 48 h window and
// the welcome code's 20 s window.
func WithChannelClock(now func() time.Time) ChannelOption {
	return func(c *channelConfig) error {
		if now == nil {
			return errors.New("kf: WithChannelClock(nil)")
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
func WithClient(cl *Client) ChannelOption {
	return func(c *channelConfig) error {
		if cl == nil {
			return errors.New("kf: WithClient(nil)")
		}
		c.client = cl
		return nil
	}
}

// WithHandlerTimeout bounds each OnMessage/OnEvent call (default 5 min).
func WithHandlerTimeout(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d <= 0 {
			return fmt.Errorf("kf: WithHandlerTimeout(%s): want > 0", d)
		}
		c.handlerTO = d
		return nil
	}
}

// WithHandlerRetries sets how many times a handler that failed with a transient error is run
// again (default 2). Its sends reuse their client msgids, so a retry never duplicates a reply.
func WithHandlerRetries(n int) ChannelOption {
	return func(c *channelConfig) error {
		if n < 0 || n > 10 {
			return fmt.Errorf("kf: WithHandlerRetries(%d): want 0..10", n)
		}
		c.retries = n
		return nil
	}
}

// WithLeaseTTL sets the lease time per account in multi-replica mode (default 30 s; renewed every
// third of it). A replica that dies holds an account at most this long.
func WithLeaseTTL(d time.Duration) ChannelOption {
	return func(c *channelConfig) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("kf: WithLeaseTTL(%s): want ≥ 100ms", d)
		}
		c.leaseTTL = d
		return nil
	}
}

// WithFetchClient sets the HTTP client Replier.ImageURL downloads with (default: a client with a
// 30 s timeout). It is used as given, never modified.
func WithFetchClient(hc *http.Client) ChannelOption {
	return func(c *channelConfig) error {
		if hc == nil {
			return errors.New("kf: WithFetchClient(nil)")
		}
		c.httpClient = hc
		return nil
	}
}

// WithStateCheck sets whether every Replier asks service_state/get before its first send when the
// session state is not known (default false). Without it, the state comes from what the Channel
// learns for free — session_status_change events, Handoff, WeCom's 95018 answers — and a send into
// a human servicer's session is refused by WeCom and reported as ErrHumanServicer all the same;
// the check costs one more API round trip on the way to most first replies. Replier.Ready always
// asks when the state is not known.
func WithStateCheck(on bool) ChannelOption {
	return func(c *channelConfig) error { c.checkState = on; return nil }
}

// WithTruncationMarker sets what ends a text cut to fit the 5-message quota (default "…").
func WithTruncationMarker(s string) ChannelOption {
	return func(c *channelConfig) error {
		if len(s) > 64 {
			return errors.New("kf: WithTruncationMarker: at most 64 bytes")
		}
		c.marker = s
		return nil
	}
}

// withBackoff sets the store/API error backoff bounds (tests).
func withBackoff(min, max time.Duration) ChannelOption {
	return func(c *channelConfig) error { c.backoffMin, c.backoffMax = min, max; return nil }
}

// NewChannel validates cfg and returns a Channel ready to mount. Unless WithStores is given it
// opens the default file stores (cursor.OpenDir on WithStateDir, "tmp"), which lock the directory:
// a second process on the same directory fails here, not at its first callback. Register hooks
// (OnMessage, ...) before serving; call Shutdown to stop.
func NewChannel(cfg Config, opts ...ChannelOption) (*Channel, error) {
	c := channelConfig{
		stateDir:    "tmp",
		workers:     16,
		skipHistory: true,
		now:         time.Now,
		leaseTTL:    30 * time.Second,
		handlerTO:   5 * time.Minute,
		retries:     2,
		maxInflight: 2000,
		fetchTO:     30 * time.Second,
		checkState:  false,
		backoffMin:  200 * time.Millisecond,
		backoffMax:  30 * time.Second,
		marker:      "…",
		logger:      slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	cr, err := crypto.New(cfg.Token, cfg.EncodingAESKey, cfg.CorpID)
	if err != nil {
		return nil, fmt.Errorf("kf: channel callback settings: %w", err)
	}
	ch := &Channel{cfg: c, crypto: cr, log: c.logger, now: c.now}
	ch.start = c.now()

	ch.stores = c.stores
	if ch.stores == nil {
		dir, err := cursor.OpenDir(c.stateDir)
		if err != nil {
			return nil, fmt.Errorf("kf: channel state: %w", err)
		}
		ch.stores, ch.closer = dir, dir
	}
	fail := func(err error) (*Channel, error) {
		if ch.closer != nil {
			_ = ch.closer.Close()
		}
		return nil, err
	}

	if c.client != nil {
		if c.client.CorpID() != cfg.CorpID {
			return fail(errors.New("kf: WithClient: the client's corp id differs from Config.CorpID"))
		}
		ch.client = c.client
	} else {
		copts := []ClientOption{WithLogger(c.logger)}
		if ts, ok := ch.stores.(TokenStore); ok {
			copts = append(copts, WithTokenStore(ts))
		}
		copts = append(copts, c.clientOpts...)
		ch.client, err = NewClient(cfg.CorpID, cfg.Secret, copts...)
		if err != nil {
			return fail(err)
		}
	}
	if ch.cfg.httpClient == nil {
		ch.cfg.httpClient = &http.Client{Timeout: c.fetchTO}
	}

	ch.pullCtx, ch.stopPull = context.WithCancel(context.Background())
	ch.workCtx, ch.stopWork = context.WithCancel(context.Background())
	ch.accounts = make(map[string]*account)
	ch.disp = newDispatcher(c.workers)
	ch.quota = newQuotaBook(c.now)
	ch.states = newStateCache()
	ch.stats.errors = make(map[int]int64)
	if c.pollEvery > 0 {
		ch.goBG(func() { ch.poll(c.pollEvery, c.pollAccounts) })
	}
	return ch, nil
}

// Client returns the API client the Channel uses, for calls the Channel does not wrap.
func (ch *Channel) Client() *Client { return ch.client }

// OnMessage sets the handler for customer messages (origin 3). Without one, customer messages are
// marked done unanswered.
func (ch *Channel) OnMessage(h MessageHandler) { ch.onMessage.Store(&h) }

// OnEvent sets the handler for events (origin 4) and human servicers' messages (origin 5).
func (ch *Channel) OnEvent(h EventHandler) { ch.onEvent.Store(&h) }

// OnWelcome sets how enter_session events with a welcome_code are answered (send_msg_on_event,
// within 20 s of the event). The event still reaches OnEvent afterwards.
func (ch *Channel) OnWelcome(h WelcomeHandler) { ch.onWelcome.Store(&h) }

// OnCallback sets the handler for callback events other than kf_msg_or_event, such as
// kf_account_auth_change. It runs after the callback was answered.
func (ch *Channel) OnCallback(h CallbackHandler) { ch.onCallback.Store(&h) }

// Trigger asks the Channel to pull openKfID now, as a callback would (token may be empty: sync_msg
// without a token is rate-limited by WeCom).
func (ch *Channel) Trigger(openKfID, token string) {
	if openKfID == "" || ch.stopping.Load() {
		return
	}
	ch.trigger(openKfID, token)
}

// Shutdown stops taking callbacks (they get 503, and WeCom retries them later), stops pulling,
// lets every message already pulled finish its handler and replies, commits the cursors,
// releases the leases and closes the stores the Channel opened. If ctx ends first, handlers are
// cancelled, whatever is done is committed, and ctx.Err() is returned; nothing done is lost and
// what was not done is pulled again at the next start.
func (ch *Channel) Shutdown(ctx context.Context) error {
	ch.shutdownMu.Lock()
	defer ch.shutdownMu.Unlock()
	if ch.done {
		return nil
	}
	ch.done = true
	ch.beginStop()

	finished := make(chan struct{})
	go func() {
		ch.accWG.Wait() // account loops end after their in-flight work is done and committed
		ch.disp.close()
		ch.bgWG.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		ch.stopWork()
		select {
		case <-finished:
		case <-time.After(shutdownGrace):
			// A handler that ignores its ctx cannot be stopped; do not wait for it forever. Its
			// message is not marked done, so the next start handles it again.
			ch.log.Error("wxkf: Shutdown: a handler ignores its context; returning without it")
		}
	}
	ch.stopWork()
	if ch.closer != nil {
		if cerr := ch.closer.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// shutdownGrace is how long Shutdown waits, after its ctx ended, for handlers to notice.
const shutdownGrace = 2 * time.Second

// crash stops everything at once without committing anything more, as a killed process would
// (tests). The stores the Channel opened are closed so another Channel can open them.
func (ch *Channel) crash() {
	ch.shutdownMu.Lock()
	defer ch.shutdownMu.Unlock()
	ch.done = true
	ch.beginStop()
	ch.stopWork()
	ch.accWG.Wait()
	ch.disp.close()
	ch.bgWG.Wait()
	if ch.closer != nil {
		_ = ch.closer.Close()
	}
}

// beginStop refuses new triggers and background hooks, then stops pulling.
func (ch *Channel) beginStop() {
	ch.accMu.Lock()
	ch.stopping.Store(true)
	ch.accMu.Unlock()
	ch.bgMu.Lock()
	ch.bgClosed = true
	ch.bgMu.Unlock()
	ch.stopPull()
}

// goBG runs fn in the background unless the Channel is stopping.
func (ch *Channel) goBG(fn func()) {
	ch.bgMu.Lock()
	defer ch.bgMu.Unlock()
	if ch.bgClosed {
		return
	}
	ch.bgWG.Add(1)
	go func() {
		defer ch.bgWG.Done()
		fn()
	}()
}

func (ch *Channel) poll(every time.Duration, ids []string) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ch.pullCtx.Done():
			return
		case <-t.C:
			seen := map[string]bool{}
			for _, id := range ids {
				seen[id] = true
				ch.trigger(id, "")
			}
			ch.accMu.Lock()
			known := make([]string, 0, len(ch.accounts))
			for id := range ch.accounts {
				if !seen[id] {
					known = append(known, id)
				}
			}
			ch.accMu.Unlock()
			for _, id := range known {
				ch.trigger(id, "")
			}
		}
	}
}

// DownloadMedia streams the media a message refers to (its MediaID) to w: cgi-bin/media/get
// (§9). A JSON error body is an *APIError, and nothing is written to w then.
func (ch *Channel) DownloadMedia(ctx context.Context, mediaID string, w io.Writer) (*DownloadedMedia, error) {
	return ch.client.DownloadMedia(ctx, mediaID, w)
}

// maxVoiceDownload caps the voice DownloadVoiceWAV buffers (WeCom's voice is ≤ 2 MB; §4).
const maxVoiceDownload = 8 << 20

// DownloadVoiceWAV downloads an AMR voice message and writes it to w as a 16-bit mono 8 kHz WAV,
// ready for speech recognition. It needs an AMR decoder (WithAMRDecoder, e.g. media/amrnb).
func (ch *Channel) DownloadVoiceWAV(ctx context.Context, mediaID string, w io.Writer) error {
	if ch.cfg.decoder == nil {
		return errors.New("kf: DownloadVoiceWAV needs an AMR decoder (WithAMRDecoder)")
	}
	var buf limitedBuffer
	buf.max = maxVoiceDownload
	if _, err := ch.client.DownloadMedia(ctx, mediaID, &buf); err != nil {
		return err
	}
	pcm, err := ch.cfg.decoder.DecodeAMR(ctx, buf.b)
	if err != nil {
		return fmt.Errorf("kf: decode voice: %w", err)
	}
	_, err = w.Write(media.EncodeWAV(pcm, 8000))
	return err
}

// limitedBuffer is a bytes buffer that refuses to grow past max.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.max {
		return 0, fmt.Errorf("kf: download larger than %d bytes", l.max)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}
