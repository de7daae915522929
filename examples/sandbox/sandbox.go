package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// config is what run needs; main fills it from flags and the environment, tests directly.
type config struct {
	// Addr is where the page and the callback URL listen ("127.0.0.1:0" picks a free port).
	Addr string
	// StateDir holds the Channel's cursor and done-journal files (to look at while it runs); ""
	// means a fresh temporary directory removed at exit. A directory with cursors of an earlier
	// run is refused: the embedded WeCom starts empty on every run, so they would point nowhere.
	StateDir string
	// Log receives the sandbox's and the SDK's log lines (nil: discard). They also appear in the
	// page's live log.
	Log *slog.Logger
	// Ready is called with the page URL once it is served.
	Ready func(pageURL string)
	// LLM answers text messages when set (see llm.go); nil makes the demo bot an echo bot.
	LLM *llmClient
	// Burst merges a customer's messages sent within Burst of each other into one bot turn
	// (kf.WithBurstWindow); 0 answers every message on its own.
	Burst time.Duration
	// ShutdownTimeout bounds the graceful stop (default 30 s).
	ShutdownTimeout time.Duration

	inspect func(*sandbox) // tests: called with the sandbox before it serves
}

// The demo's fixed cast.
const (
	servicerID   = "zhang.san" // the human servicer the fault buttons hand sessions to
	defaultScene = "sandbox"
)

// sandbox is the Channel under test, the fake WeCom it talks to, and the page's plumbing.
type sandbox struct {
	cfg    config
	log    *slog.Logger // the Channel's logger: cfg.Log plus the page's live log
	srv    *kftest.Server
	ch     *kf.Channel
	hub    *hub
	bot    *bot
	ffmpeg *media.FFmpeg // nil when ffmpeg is not installed: voices are download-only then
	meters *liveMetrics  // the Channel's OpenTelemetry metrics, for the metrics card

	base  string // http://host:port
	cbURL string // the callback URL the fake WeCom posts to: this server's /wxkf/

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	unobs    func()

	mu     sync.Mutex
	users  map[string]bool // customers played from the page
	faults faultsView      // what the fault toggles have switched on
}

// maxCustomers caps how many customers the page may create (a demo, not a load test).
const maxCustomers = 200

// run serves the sandbox on cfg.Addr until ctx ends, then stops gracefully: the page's event
// streams end, the Channel finishes what it pulled (Shutdown), the HTTP server and the fake stop.
func run(ctx context.Context, cfg config) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another address with -addr)", cfg.Addr, err)
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		cfg.Log.Warn("sandbox: listening beyond loopback; the page has no authentication, anyone who reaches it can drive it",
			"addr", ln.Addr().String())
	}

	dir := cfg.StateDir
	if dir != "" {
		// The embedded WeCom starts empty on every run: cursors of an earlier run point past
		// messages that no longer exist, and the new run would never see its own.
		if fi, err := os.Stat(filepath.Join(dir, cursor.CursorFileName)); err == nil && fi.Size() > 2 {
			return fmt.Errorf("%s holds the cursors of an earlier run, but the embedded WeCom starts empty each time: use a fresh -state directory", dir)
		}
	}
	if dir == "" {
		dir, err = os.MkdirTemp("", "wxkf-sandbox-")
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	sb, err := newSandbox(cfg, baseURL(ln.Addr()), dir)
	if err != nil {
		return err
	}
	if cfg.inspect != nil {
		cfg.inspect(sb)
	}
	hs := &http.Server{Handler: sb.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	sb.cfg.Log.Info("sandbox: serving", "page", sb.base+"/", "callback", sb.cbURL, "state", dir)
	if cfg.Ready != nil {
		cfg.Ready(sb.base + "/")
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	sb.hub.close() // event streams end, so the HTTP server can drain
	errCh := sb.ch.Shutdown(sctx)
	errHS := hs.Shutdown(sctx)
	sb.close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return errors.Join(errCh, errHS)
}

// baseURL is how the fake WeCom and the browser reach the listener: an unspecified address
// (0.0.0.0, ::) is reached on loopback.
func baseURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// newSandbox wires a kftest fake WeCom (pushing callbacks to base/wxkf/), a kf.Channel mounted
// there, the demo bot, and the page's live feed.
func newSandbox(cfg config, base, stateDir string) (*sandbox, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sb := &sandbox{cfg: cfg, base: base, cbURL: base + "/wxkf/", users: map[string]bool{}}
	sb.bgCtx, sb.bgCancel = context.WithCancel(context.Background())
	if ff := (&media.FFmpeg{}); ff.Available() {
		sb.ffmpeg = ff
	}
	sb.srv = kftest.NewServer(kftest.WithCallbackURL(sb.cbURL))
	sb.srv.AddServicer(servicerID, kftest.ServicerReceiving)

	info := infoView{OpenKfID: sb.srv.OpenKfID(), CorpID: sb.srv.CorpID(), Mode: "echo", Callback: sb.cbURL,
		FFmpeg: sb.ffmpeg != nil}
	if cfg.LLM != nil {
		info.Mode, info.Model = "llm", cfg.LLM.model
	}
	sb.hub = newHub(info)
	// Everything the SDK logs also goes to the page, as "sdk" lines.
	sb.log = slog.New(&teeHandler{next: cfg.Log.Handler(), hub: sb.hub, level: slog.LevelInfo})
	sb.unobs = sb.srv.Observe(func(r kftest.Record) { sb.hub.logEvent(recordToLog(r)) })
	sb.meters = newLiveMetrics()

	ch, err := kf.NewChannel(kf.Config{
		CorpID: sb.srv.CorpID(), Secret: sb.srv.Secret(),
		Token: sb.srv.CallbackToken(), EncodingAESKey: sb.srv.EncodingAESKey(),
	},
		kf.WithStateDir(stateDir),
		kf.WithClientOptions(kf.WithBaseURL(sb.srv.URL())),
		kf.WithChannelLogger(sb.log),
		kf.WithBurstWindow(cfg.Burst),
		kf.WithMeterProvider(sb.meters.mp),
	)
	if err != nil {
		sb.unobs()
		sb.srv.Close()
		sb.bgCancel()
		return nil, fmt.Errorf("channel: %w", err)
	}
	sb.ch = ch
	sb.bot = newBot(sb, cfg.LLM)
	ch.OnMessage(sb.bot.onMessage)
	ch.OnWelcome(sb.bot.onWelcome)
	ch.OnEvent(sb.bot.onEvent)

	sb.goBG(sb.watchSent)
	sb.goBG(sb.watchState)
	return sb, nil
}

func (sb *sandbox) goBG(fn func(ctx context.Context)) {
	sb.bg.Add(1)
	go func() {
		defer sb.bg.Done()
		fn(sb.bgCtx)
	}()
}

// close stops the feed loops and the fake WeCom (after the Channel's Shutdown).
func (sb *sandbox) close() {
	sb.bgCancel()
	sb.bg.Wait()
	sb.unobs()
	sb.srv.Close()
	_ = sb.meters.mp.Shutdown(context.Background())
}

// watchSent turns every send the fake WeCom accepted into a chat bubble, in acceptance order:
// the customer's phone shows what reached WeCom, nothing the bot merely attempted.
func (sb *sandbox) watchSent(ctx context.Context) {
	n := 0
	for {
		sent, err := sb.srv.WaitSent(ctx, n+1)
		for _, s := range sent[min(n, len(sent)):] {
			sb.hub.chatEvent(sb.sentToChat(s))
		}
		n = max(n, len(sent))
		if err != nil {
			return
		}
	}
}

func (sb *sandbox) sentToChat(s kftest.Sent) chatEvent {
	c := chatEvent{User: s.ToUser, Dir: "out", Kind: s.MsgType, At: s.At, From: "bot", MsgID: s.ClientMsgID, Text: s.Text}
	if s.OnEvent {
		c.From = "welcome"
	}
	req, _ := s.Request() // the fake accepted the body: it decodes
	switch s.MsgType {
	case "image", "voice", "video", "file":
		sb.describeMedia(&c, s.MediaID)
	case "msgmenu":
		c.Kind, c.Menu = "menu", menuOf(req.MsgMenu)
	case "location":
		c.Text = locationText(req.Location)
	case "text":
	default:
		c.Kind, c.Text = "note", "sent a "+s.MsgType+" message"
	}
	return c
}

// describeMedia fills a bubble's media fields from what the fake stores under mediaID.
func (sb *sandbox) describeMedia(c *chatEvent, mediaID string) {
	c.MediaID = mediaID
	data, _, filename, ok := sb.srv.Media(mediaID)
	if !ok {
		return
	}
	c.Filename, c.Size = filename, len(data)
	if c.Kind == "voice" {
		if d, err := media.AMRDuration(data); err == nil {
			c.DurationMS = d.Milliseconds()
		}
		c.Playable = sb.ffmpeg != nil
	}
}

// watchState publishes quota, session state and the Channel's counters when they change.
func (sb *sandbox) watchState(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		sb.hub.setState(sb.snapshotState())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (sb *sandbox) snapshotState() *stateEvent {
	sb.mu.Lock()
	users := make([]string, 0, len(sb.users))
	for u := range sb.users {
		users = append(users, u)
	}
	faults := sb.faults
	sb.mu.Unlock()

	st := &stateEvent{Customers: map[string]customerState{}, Faults: faults}
	kfID := sb.srv.OpenKfID()
	for _, u := range users {
		state, servicer := sb.srv.ServiceState(kfID, u)
		st.Customers[u] = customerState{QuotaLeft: sb.srv.QuotaLeft(kfID, u), ServiceState: state,
			StateName: stateName(state), Servicer: servicer}
	}
	s := sb.ch.Stats()
	st.Stats = statsView{Callbacks: s.Callbacks, Coalesced: s.Coalesced, Rejected: s.CallbacksRejected,
		Pulls: s.Pulls, Messages: s.Messages, Handled: s.Handled, Replies: s.Replies,
		DuplicateSends: s.DuplicateSends, DedupeHits: s.DedupeHits, HandlerErrors: s.HandlerErrors,
		InFlight: s.InFlight, QueueDepth: s.QueueDepth, Tokens: sb.srv.AccessTokens()}
	if len(s.ErrorsByCode) > 0 {
		st.Stats.Errors = make(map[string]int64, len(s.ErrorsByCode))
		for code, n := range s.ErrorsByCode {
			st.Stats.Errors[strconv.Itoa(code)] = n
		}
	}
	if mv, err := sb.meters.snapshot(context.Background(), kfID); err == nil {
		st.Metrics = mv
	}
	return st
}

// touch records that the page plays customer user; false when too many customers exist.
func (sb *sandbox) touch(user string) bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.users[user] && len(sb.users) >= maxCustomers {
		return false
	}
	sb.users[user] = true
	return true
}

// servicerJoins moves user's session to the human servicer in the fake WeCom's books and has the
// servicer greet the customer from the WeCom client (an origin 5 message the bot must ignore).
// why says who moved it.
func (sb *sandbox) servicerJoins(user, why string) {
	kfID := sb.srv.OpenKfID()
	if st, _ := sb.srv.ServiceState(kfID, user); st != kftest.StateServicer {
		sb.srv.SetServiceState(kfID, user, kftest.StateServicer, servicerID)
	}
	sb.hub.chatEvent(chatEvent{User: user, Dir: "note", Kind: "note", Tone: "warn",
		Text: "human servicer " + servicerID + " has the session (state 3): " + why + "; the bot stays quiet"})
	hello := "您好，我是人工客服张三，接下来由我为您服务。(Hi, I'm Zhang San, a human agent. I'll take it from here.)"
	id := newMsgID()
	sb.hub.chatEvent(chatEvent{User: user, Dir: "out", Kind: "text", From: "servicer", Servicer: servicerID, Text: hello, MsgID: id})
	sb.srv.AddMessage(kftest.Message{MsgID: id, ExternalUserID: user, Origin: kftest.OriginServicer,
		ServicerUserID: servicerID, MsgType: "text", Body: map[string]string{"content": hello}})
}

// newMsgID makes a sync_msg msgid like WeCom's (44 characters of [0-9A-Za-z_-]), so the
// sandbox can show the customer's bubble before the message is stored and its callback pushed.
func newMsgID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"
	b := make([]byte, 44)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
