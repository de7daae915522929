package kf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// Stores is the durable state a Channel keeps: cursors, done msgids, per-account leases,
// per-account metadata and reply records. cursor.OpenDir (one process, the default) and
// cursor/redis (several replicas) implement it. The Channel writes only through a held lease, so a
// replica that lost an account cannot overwrite its successor's state. A Stores that also
// implements TokenStore shares the access token too, and one that implements RateStore the rate
// limiter's budget and pauses.
type Stores interface {
	cursor.State
}

// Hook signatures.
type (
	// MessageHandler is Handler, the name OnMessage's handler type had before Handler existed.
	MessageHandler = Handler
	// EventHandler is Handler: OnEvent's handler sees events (origin 4) and human servicers'
	// messages (origin 5), in order per customer. r can reply (subject to the same rules) where
	// WeCom allows it.
	EventHandler = Handler
	// WelcomeHandler returns the welcome for an enter_session event carrying a welcome_code: a
	// *Text or *Menu that the Channel sends with send_msg_on_event inside the code's 20 s window.
	// Nil content sends nothing.
	WelcomeHandler func(ctx context.Context, m *Message) (Content, error)
	// CallbackHandler sees callback events other than kf_msg_or_event (e.g.
	// kf_account_auth_change), after the 200 answer.
	CallbackHandler func(ctx context.Context, ev *crypto.Event)
	// DeadLetterHandler sees a message the Channel gives up on: its handler failed permanently or
	// panicked, or kept failing transiently past the retry horizon. err is the last failure. The
	// message is marked done when the hook returns; the hook is the place to alert, store the
	// message for a human, or send an apology through another path. For a burst (WithBurstWindow)
	// the hook runs once, with the message the handler saw: the latest, with every message of the
	// burst in m.Burst; each of them counts in Stats.DeadLetters.
	DeadLetterHandler func(ctx context.Context, m *Message, err error)
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

	pullLinger time.Duration // least time between two pulls of a busy holding (0: none)
	log        *slog.Logger
	now        func() time.Time
	start      time.Time // history boundary for skip-history

	onMessage  atomic.Pointer[MessageHandler]
	onEvent    atomic.Pointer[EventHandler]
	onWelcome  atomic.Pointer[WelcomeHandler]
	onCallback atomic.Pointer[CallbackHandler]
	onDead     atomic.Pointer[DeadLetterHandler]
	onEnd      atomic.Pointer[SessionEndHandler]
	mw         atomic.Pointer[[]Middleware]
	ready      chan struct{} // closed by the first hook: nothing is pulled before
	readyOnce  sync.Once
	dupWording sync.Once

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
	tel    *channelTel
}

// NewChannel validates cfg and returns a Channel ready to mount. Unless WithStores is given it
// opens the default file stores (cursor.OpenDir on WithStateDir, "tmp"), which lock the directory:
// a second process on the same directory fails here, not at its first callback. It does no
// network I/O. The first hook registered (OnMessage, OnEvent or OnWelcome) starts the Channel,
// which then pulls every account it has state for, so that a callback answered before a crash or
// restart is never stranded; set the welcome and dead-letter hooks before OnMessage. Call
// Shutdown to stop.
func NewChannel(cfg Config, opts ...ChannelOption) (*Channel, error) {
	c := channelConfig{
		stateDir:     "tmp",
		workers:      DefaultWorkers,
		skipHistory:  true,
		now:          time.Now,
		leaseTTL:     DefaultLeaseTTL,
		handlerTO:    DefaultHandlerTimeout,
		retryMin:     DefaultRetryMin,
		retryMax:     DefaultRetryMax,
		retryHorizon: DefaultRetryHorizon,
		queueBytes:   DefaultQueueBytes,
		fetchTO:      DefaultFetchTimeout,
		checkState:   false,
		backoffMin:   200 * time.Millisecond,
		backoffMax:   30 * time.Second,
		maxAhead:     maxAhead,
		marker:       "…",
		replayWindow: DefaultReplayWindow,
		logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	copts := []crypto.Option{crypto.WithClock(c.now)}
	if c.replayWindow > 0 {
		copts = append(copts, crypto.WithReplayWindow(c.replayWindow))
	}
	cr, err := crypto.New(cfg.Token, cfg.EncodingAESKey, cfg.CorpID, copts...)
	if err != nil {
		return nil, fmt.Errorf("%w: channel callback settings: %w", ErrInvalidArgument, err)
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
	if _, shared := ch.stores.(RateStore); shared {
		ch.pullLinger = pullLinger // pulls of a busy account are batched to spare the shared store
	}
	fail := func(err error) (*Channel, error) {
		if ch.closer != nil {
			_ = ch.closer.Close()
		}
		return nil, err
	}

	if c.client != nil {
		if c.client.CorpID() != cfg.CorpID {
			return fail(invalidf("WithClient: the client's corp id differs from Config.CorpID"))
		}
		if len(c.clientOpts) > 0 {
			return fail(invalidf("WithClientOptions has no effect with WithClient: give those options to NewClient"))
		}
		ch.client = c.client
	} else {
		copts := []ClientOption{WithLogger(c.logger)}
		if ts, ok := ch.stores.(TokenStore); ok {
			copts = append(copts, WithTokenStore(ts))
		}
		if rs, ok := ch.stores.(RateStore); ok {
			l, err := NewRateLimiter(WithRateStore(rs)) // WithClientOptions(WithRateLimiter) overrides it
			if err != nil {
				return fail(err)
			}
			copts = append(copts, WithRateLimiter(l))
		}
		copts = append(copts, c.tel.clientOptions()...)
		copts = append(copts, c.clientOpts...)
		ch.client, err = NewClient(cfg.CorpID, cfg.Secret, copts...)
		if err != nil {
			return fail(err)
		}
	}
	if ch.cfg.fetchClient == nil {
		ch.cfg.fetchClient = newFetchClient(c.fetchPrivate)
	}

	ch.ready = make(chan struct{})
	ch.pullCtx, ch.stopPull = context.WithCancel(context.Background())
	ch.workCtx, ch.stopWork = context.WithCancel(context.Background())
	ch.accounts = make(map[string]*account)
	ch.disp = newDispatcher(c.workers, ch.pullCtx)
	ch.quota = newQuotaBook(c.now)
	ch.states = newStateCache()
	ch.stats.errors = make(map[int]int64)
	var terr error
	if ch.tel, terr = newChannelTel(c.tel); terr == nil {
		terr = ch.tel.register(ch)
	}
	if terr != nil {
		ch.log.Warn("wxkf: telemetry instrument", "err", terr) // a no-op instrument stands in
	}
	if c.pollEvery > 0 {
		ch.goBG(func() { ch.poll(c.pollEvery, c.pollAccounts) })
	}
	return ch, nil
}

// Client returns the API client the Channel uses, for calls the Channel does not wrap.
func (ch *Channel) Client() *Client { return ch.client }

// OnMessage sets the handler for customer messages (origin 3). Like OnEvent and OnWelcome, it
// starts the Channel if it is the first hook set: nothing is pulled before (callbacks are
// answered and remembered). A customer message pulled while no OnMessage handler is set is not
// marked done: it waits, in order, and is pulled again when one is set. A nil h marks customer
// messages done unanswered.
func (ch *Channel) OnMessage(h MessageHandler) {
	prev := ch.onMessage.Swap(&h)
	ch.begin()
	if prev == nil {
		ch.goBG(ch.sweep) // pull what waited for a handler
		ch.goBG(ch.sweepOwed)
	}
}

// OnEvent sets the handler for events (origin 4) and human servicers' messages (origin 5). It
// starts the Channel if it is the first hook set (see OnMessage).
func (ch *Channel) OnEvent(h EventHandler) {
	ch.onEvent.Store(&h)
	ch.begin()
}

// OnWelcome sets how enter_session events with a welcome_code are answered (send_msg_on_event,
// within 20 s of the event). The event still reaches OnEvent afterwards. It starts the Channel if
// it is the first hook set (see OnMessage).
func (ch *Channel) OnWelcome(h WelcomeHandler) {
	ch.onWelcome.Store(&h)
	ch.begin()
}

// begin starts pulling: the start-up sweep and the account loops wait for it.
func (ch *Channel) begin() {
	ch.readyOnce.Do(func() {
		close(ch.ready)
		ch.log.Info("wxkf: channel started", "workers", ch.cfg.workers)
	})
}

// OnCallback sets the handler for callback events other than kf_msg_or_event, such as
// kf_account_auth_change. It runs after the callback was answered.
func (ch *Channel) OnCallback(h CallbackHandler) { ch.onCallback.Store(&h) }

// OnDeadLetter sets the hook for messages the Channel gives up on (see DeadLetterHandler). Without
// one, they are logged at Error level and counted in Stats.DeadLetters.
func (ch *Channel) OnDeadLetter(h DeadLetterHandler) { ch.onDead.Store(&h) }

// Trigger asks the Channel to pull openKfID now, as a callback would (token may be empty: sync_msg
// without a token is rate-limited by WeCom). Like a callback, on stores shared between replicas it
// first marks the account owed (see cursor.Owed), so another replica pulls if this one dies first.
func (ch *Channel) Trigger(openKfID, token string) {
	if openKfID == "" || ch.stopping.Load() {
		return
	}
	ch.markOwed(context.Background(), openKfID)
	ch.trigger(openKfID, token, ch.now())
}

// Shutdown stops taking callbacks (they get 503, and WeCom retries them later), stops pulling,
// lets every message already queued finish its handler and replies, commits the cursors,
// releases the leases and closes the stores the Channel opened. A message waiting for a retry is
// not waited for: it, and its customer's later messages, are left for the next start, in order.
// If ctx ends first, handlers are cancelled, whatever is done is committed, and ctx.Err() is
// returned; nothing done is lost and what was not done is pulled again at the next start (every
// account with stored state is pulled at start-up).
func (ch *Channel) Shutdown(ctx context.Context) error {
	ch.shutdownMu.Lock()
	defer ch.shutdownMu.Unlock()
	if ch.done {
		return nil
	}
	ch.done = true
	ch.beginStop()
	ch.log.Info("wxkf: shutting down: finishing the messages already pulled")

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
	ch.tel.unregister()
	if ch.closer != nil {
		if cerr := ch.closer.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		ch.log.Warn("wxkf: shut down; what was not finished is pulled again at the next start", "err", err)
	} else {
		ch.log.Info("wxkf: shut down")
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
	ch.tel.unregister()
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

// sweep pulls every account with stored state once at start-up, so that a callback this or another
// process answered but never pulled for (it crashed, or stopped, during the pull) is not stranded
// until the account's next callback. A store error is retried with backoff.
func (ch *Channel) sweep() {
	select {
	case <-ch.ready:
	case <-ch.pullCtx.Done():
		return
	}
	ch.accMu.Lock()
	known := make([]string, 0, len(ch.accounts))
	for id := range ch.accounts {
		known = append(known, id)
	}
	ch.accMu.Unlock()
	for _, id := range known {
		ch.trigger(id, "", time.Time{})
	}
	bo := ch.newBackoff()
	for {
		ids, err := ch.stores.Accounts(ch.pullCtx)
		if err == nil {
			for _, id := range ids {
				if !ch.trigger(id, "", time.Time{}) {
					return
				}
			}
			if len(ids) > 0 {
				ch.log.Info("wxkf: pulling every known account once at start-up", "accounts", len(ids))
			}
			return
		}
		if ch.pullCtx.Err() != nil {
			return
		}
		ch.noteErr("list accounts", err)
		if !bo.wait(ch.pullCtx) {
			return
		}
	}
}

func (ch *Channel) poll(every time.Duration, ids []string) {
	select {
	case <-ch.ready:
	case <-ch.pullCtx.Done():
		return
	}
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
				ch.trigger(id, "", time.Time{})
			}
			ch.accMu.Lock()
			known := make([]string, 0, len(ch.accounts))
			for id := range ch.accounts {
				if !seen[id] {
					seen[id] = true
					known = append(known, id)
				}
			}
			ch.accMu.Unlock()
			if stored, err := ch.stores.Accounts(ch.pullCtx); err == nil {
				for _, id := range stored {
					if !seen[id] {
						seen[id] = true
						known = append(known, id)
					}
				}
			}
			for _, id := range known {
				ch.trigger(id, "", time.Time{})
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
