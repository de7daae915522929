package main

import (
	"encoding/json"
	"sync"
	"time"
)

// Event kinds the page receives on /api/events.
const (
	evReset  = "reset"  // full snapshot: sent first on every (re)connection
	evChat   = "chat"   // a bubble in the chat column
	evLog    = "log"    // a line in the live log
	evState  = "state"  // quota, session state, SDK counters
	evTyping = "typing" // LLM text streamed but not sent yet
	evParts  = "parts"  // these sent texts are the parts of one split reply
)

// event is one message on the event stream. Exactly one of the payload fields is set.
type event struct {
	Seq    int64         `json:"seq"`
	Type   string        `json:"type"`
	Chat   *chatEvent    `json:"chat,omitempty"`
	Log    *logEvent     `json:"log,omitempty"`
	State  *stateEvent   `json:"state,omitempty"`
	Typing *typingEvent  `json:"typing,omitempty"`
	Parts  *partsEvent   `json:"parts,omitempty"`
	Reset  *resetPayload `json:"reset,omitempty"`
}

// chatEvent is one bubble: what the customer sent (Dir "in") or what reached them (Dir "out").
type chatEvent struct {
	User string    `json:"user"`
	Dir  string    `json:"dir"`  // "in" (customer) | "out" (bot, welcome, servicer) | "note" (system line)
	Kind string    `json:"kind"` // text | image | voice | video | file | menu | location | link | note
	At   time.Time `json:"at"`
	// Who sent an "out" bubble: "bot" (send_msg), "welcome" (send_msg_on_event), "servicer"
	// (a human in the WeCom client, origin 5).
	From     string `json:"from,omitempty"`
	Servicer string `json:"servicer,omitempty"`
	Text     string `json:"text,omitempty"`
	MediaID  string `json:"media_id,omitempty"`
	Filename string `json:"filename,omitempty"`
	Size     int    `json:"size,omitempty"`
	// DurationMS is a voice message's playing time.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Playable says the sandbox can serve a voice as WAV (ffmpeg decodes the AMR).
	Playable bool `json:"playable,omitempty"`
	// MsgID is WeCom's msgid (incoming) or the client msgid of the send (outgoing).
	MsgID string `json:"msgid,omitempty"`
	// Part and Parts label the pieces of one Replier.Text call that was split at 2048 bytes
	// ("part 2 of 3"); zero for a message that went out whole.
	Part  int       `json:"part,omitempty"`
	Parts int       `json:"parts,omitempty"`
	Menu  *menuView `json:"menu,omitempty"`
	// Tone colours notes: "info", "warn" (the bot stayed quiet, a reply was cut).
	Tone string `json:"tone,omitempty"`
}

// menuView is a msgmenu as the page draws it.
type menuView struct {
	Head  string         `json:"head,omitempty"`
	Items []menuItemView `json:"items"`
	Tail  string         `json:"tail,omitempty"`
}

type menuItemView struct {
	Type    string `json:"type"` // click | view | miniprogram | text
	ID      string `json:"id,omitempty"`
	Content string `json:"content"`
	URL     string `json:"url,omitempty"`
}

// logEvent is one line of the live log.
type logEvent struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"` // callback | sync | send | token | state | media | api | sdk | bot | fault
	Title string    `json:"title"`
	// Tags are the facts worth reading at a glance (cursor, has_more, client msgid, ...).
	Tags    []tag           `json:"tags,omitempty"`
	ErrCode int             `json:"errcode,omitempty"`
	Err     string          `json:"err,omitempty"`
	Status  int             `json:"status,omitempty"`
	MS      float64         `json:"ms,omitempty"`
	Req     json.RawMessage `json:"req,omitempty"`
	Resp    json.RawMessage `json:"resp,omitempty"`
	User    string          `json:"user,omitempty"`
	Level   string          `json:"level,omitempty"` // sdk/bot lines: info | warn | error
}

type tag struct {
	K string `json:"k"`
	V string `json:"v"`
}

// stateEvent is what the side panel shows besides the log.
type stateEvent struct {
	Customers map[string]customerState `json:"customers"`
	Stats     statsView                `json:"stats"`
	Metrics   *metricsView             `json:"metrics,omitempty"`
	Faults    faultsView               `json:"faults"`
}

type customerState struct {
	QuotaLeft    int    `json:"quota_left"`
	ServiceState int    `json:"service_state"`
	StateName    string `json:"state_name"`
	Servicer     string `json:"servicer,omitempty"`
}

type statsView struct {
	Callbacks      int64            `json:"callbacks"`
	Coalesced      int64            `json:"coalesced"`
	Rejected       int64            `json:"rejected"`
	Pulls          int64            `json:"pulls"`
	Messages       int64            `json:"messages"`
	Handled        int64            `json:"handled"`
	Replies        int64            `json:"replies"`
	DuplicateSends int64            `json:"duplicate_sends"`
	DedupeHits     int64            `json:"dedupe_hits"`
	HandlerErrors  int64            `json:"handler_errors"`
	InFlight       int              `json:"in_flight"`
	QueueDepth     int              `json:"queue_depth"`
	Errors         map[string]int64 `json:"errors,omitempty"`
	Tokens         int              `json:"tokens"`
}

type faultsView struct {
	Busy bool `json:"busy"` // 30% of API calls answer -1
	Drop bool `json:"drop"` // 30% of API calls take effect but lose their answer
}

// partsEvent lists, in order, the client msgids of the texts one Replier.Text call sent.
type partsEvent struct {
	IDs []string `json:"ids"`
}

// typingEvent shows LLM text that has streamed in but is not sent yet.
type typingEvent struct {
	User string `json:"user"`
	Text string `json:"text"`
	Done bool   `json:"done"`
}

// resetPayload is the snapshot a new connection starts from.
type resetPayload struct {
	Info  infoView    `json:"info"`
	Chat  []chatEvent `json:"chat"`
	Log   []logEvent  `json:"log"`
	State *stateEvent `json:"state,omitempty"`
}

type infoView struct {
	OpenKfID string `json:"open_kfid"`
	CorpID   string `json:"corp_id"`
	Mode     string `json:"mode"` // "echo" or "llm"
	Model    string `json:"model,omitempty"`
	Callback string `json:"callback"`
	FFmpeg   bool   `json:"ffmpeg"`
}

// Retention of the hub: what a page gets when it (re)connects.
const (
	maxChatHistory = 2000
	maxLogHistory  = 800
	subscriberBuf  = 1024
)

// hub fans events out to the connected pages and keeps the history a new page starts from. A
// page that falls subscriberBuf events behind is disconnected; its EventSource reconnects and
// starts again from a fresh snapshot, so nothing is silently lost.
type hub struct {
	info infoView

	mu    sync.Mutex
	seq   int64
	chat  []chatEvent
	log   []logEvent
	state *stateEvent
	subs  map[*subscriber]struct{}
	// pending holds part labels of sends not yet shown (the label can arrive first).
	pending map[string][2]int
	closed  bool
}

type subscriber struct {
	ch     chan []byte
	gone   chan struct{} // closed when the hub dropped the subscriber (lagging or closing)
	closed bool
}

func newHub(info infoView) *hub {
	return &hub{info: info, subs: make(map[*subscriber]struct{}), pending: make(map[string][2]int)}
}

// subscribe registers a page and returns its first message (the snapshot) and its subscription.
// Snapshot and registration happen under one lock, so no event falls between them.
func (h *hub) subscribe() ([]byte, *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &subscriber{ch: make(chan []byte, subscriberBuf), gone: make(chan struct{})}
	if h.closed {
		s.closed = true
		close(s.gone)
		return nil, s
	}
	h.seq++
	snap := event{Seq: h.seq, Type: evReset, Reset: &resetPayload{
		Info: h.info, Chat: append([]chatEvent{}, h.chat...), Log: append([]logEvent{}, h.log...), State: h.state,
	}}
	b, _ := json.Marshal(snap)
	h.subs[s] = struct{}{}
	return b, s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s)
}

func (h *hub) dropLocked(s *subscriber) {
	if !s.closed {
		s.closed = true
		close(s.gone)
	}
	delete(h.subs, s)
}

// close disconnects every page; later subscriptions end at once.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.dropLocked(s)
	}
}

func (h *hub) publish(e event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case e.Chat != nil:
		if p, ok := h.pending[e.Chat.MsgID]; ok && e.Chat.Dir == "out" {
			e.Chat.Part, e.Chat.Parts = p[0], p[1]
			delete(h.pending, e.Chat.MsgID)
		}
		h.chat = appendCapped(h.chat, *e.Chat, maxChatHistory)
	case e.Log != nil:
		h.log = appendCapped(h.log, *e.Log, maxLogHistory)
	case e.State != nil:
		h.state = e.State
	}
	h.seq++
	e.Seq = h.seq
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	for s := range h.subs {
		select {
		case s.ch <- b:
		default:
			h.dropLocked(s) // lagging: it reconnects and gets a fresh snapshot
		}
	}
}

func appendCapped[T any](s []T, v T, limit int) []T {
	if len(s) >= limit {
		n := copy(s, s[len(s)-limit+1:])
		s = s[:n]
	}
	return append(s, v)
}

func (h *hub) chatEvent(c chatEvent) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	h.publish(event{Type: evChat, Chat: &c})
}

func (h *hub) logEvent(l logEvent) {
	if l.At.IsZero() {
		l.At = time.Now()
	}
	h.publish(event{Type: evLog, Log: &l})
}

// annotateParts labels the sends ids (client msgids, in order) as the parts of one split text:
// in the history kept for new pages, and live on the pages connected now.
func (h *hub) annotateParts(ids []string) {
	if len(ids) < 2 {
		return
	}
	want := make(map[string]int, len(ids))
	for i, id := range ids {
		want[id] = i + 1
	}
	h.mu.Lock()
	for i := len(h.chat) - 1; i >= 0 && len(want) > 0 && i >= len(h.chat)-200; i-- {
		c := &h.chat[i]
		if p, ok := want[c.MsgID]; ok && c.Dir == "out" {
			c.Part, c.Parts = p, len(ids)
			delete(want, c.MsgID)
		}
	}
	if len(h.pending) > 10000 {
		clear(h.pending)
	}
	for id, p := range want {
		h.pending[id] = [2]int{p, len(ids)}
	}
	h.mu.Unlock()
	h.publish(event{Type: evParts, Parts: &partsEvent{IDs: ids}})
}

func (h *hub) typing(t typingEvent) { h.publish(event{Type: evTyping, Typing: &t}) }

// chatHistory returns the chat bubbles kept so far (tests).
func (h *hub) chatHistory() []chatEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chatEvent(nil), h.chat...)
}

// setState publishes st unless it equals the last state published.
func (h *hub) setState(st *stateEvent) {
	h.mu.Lock()
	same := h.state != nil && stateEqual(h.state, st)
	h.mu.Unlock()
	if !same {
		h.publish(event{Type: evState, State: st})
	}
}

func stateEqual(a, b *stateEvent) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
