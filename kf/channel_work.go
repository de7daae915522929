package kf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// submit queues m behind the earlier messages of its customer.
func (ch *Channel) submit(openKfID string, m *Message, tr *tracker) {
	key := customerKey(openKfID, customerOf(m))
	ch.stats.dispatched.Add(1)
	ch.disp.submit(key, func() { ch.handle(openKfID, m, tr) })
}

// handle runs the hooks for m, then marks it done (durably) and releases its page. After a hard
// stop it does neither: the message is pulled again at the next start.
func (ch *Channel) handle(openKfID string, m *Message, tr *tracker) {
	if ch.workCtx.Err() != nil {
		return
	}
	if !ch.runHooks(m) {
		return
	}
	bo := ch.newBackoff()
	for {
		err := ch.stores.MarkDone(ch.workCtx, openKfID, m.MsgID)
		if err == nil {
			break
		}
		ch.noteErr("dedup mark", err)
		if !bo.wait(ch.workCtx) {
			return
		}
	}
	ch.stats.handled.Add(1)
	tr.done(m.MsgID)
}

// runHooks calls the hook m is for. It reports false if a hard stop interrupted it.
func (ch *Channel) runHooks(m *Message) bool {
	switch {
	case m.Origin == OriginCustomer && m.MsgType != MsgTypeEvent:
		if h := ch.onMessage.Load(); h != nil {
			return ch.runHandler("OnMessage", m, func(ctx context.Context, r Replier) error { return (*h)(ctx, m, r) })
		}
		return true
	default: // events (origin 4), human servicers' messages (origin 5), anything else
		if m.Event != nil {
			switch m.Event.EventType {
			case EventEnterSession:
				hctx, cancel := context.WithTimeout(ch.workCtx, ch.cfg.handlerTO)
				ch.welcome(hctx, m)
				cancel()
			case EventSessionStatusChange:
				ch.states.forget(customerKey(m.OpenKfID, customerOf(m)))
			}
		}
		if h := ch.onEvent.Load(); h != nil {
			return ch.runHandler("OnEvent", m, func(ctx context.Context, r Replier) error { return (*h)(ctx, m, r) })
		}
		return ch.workCtx.Err() == nil
	}
}

// runHandler calls fn with a fresh Replier, again after a transient failure (the sends reuse
// their client msgids, so nothing is sent twice).
func (ch *Channel) runHandler(name string, m *Message, fn func(context.Context, Replier) error) bool {
	bo := ch.newBackoff()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(ch.workCtx, ch.cfg.handlerTO)
		err := safeCall(ctx, ch.newReplier(m), fn)
		cancel()
		if ch.workCtx.Err() != nil {
			return false
		}
		if err == nil {
			return true
		}
		ch.stats.handlerErrors.Add(1)
		ch.noteCode(err)
		retry := attempt < ch.cfg.retries && transient(err)
		ch.log.Warn("wxkf: handler failed", "hook", name, "open_kfid", m.OpenKfID, "msgid", m.MsgID,
			"attempt", attempt+1, "retry", retry, "err", err)
		if !retry {
			return true // done, unanswered: retrying a permanent failure would block the customer's queue
		}
		if !bo.wait(ch.workCtx) {
			return false
		}
	}
}

func safeCall(ctx context.Context, r Replier, fn func(context.Context, Replier) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("kf: handler panicked: %v", v)
		}
	}()
	return fn(ctx, r)
}

// transient reports errors worth running a handler again for: WeCom busy or over its
// concurrency limit, and network failures.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *RequestError
	return errors.Is(err, ErrSystemBusy) || errors.Is(err, ErrConcurrencyLimit) || errors.As(err, &re)
}

// quotaBook counts, per customer, the sends since the customer's latest message (§6: at most 5,
// within 48 h; a new customer message resets the count). WeCom counts from when the message
// reached it; the Channel learns of it only when it pulls it, and may have sent in between: those
// sends count against the new message at WeCom too, so a reset keeps the sends made after the
// message's send_time. send_time has one-second resolution, so a send within that same second
// cannot be ordered; it is taken to be earlier (dropped): the customer who writes right after the
// bot gets their full quota. The rare send that really came after a message in its second, and
// before the Channel pulled it, can still meet 95001, which the Replier reports as
// ErrQuotaExhausted and remembers. Every customer message of a page is observed before any of
// them is dispatched, so a burst never earns replies beyond five.
type quotaBook struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*window
	ops int
}

type window struct {
	anchor     string    // msgid of the customer's latest message
	anchorTime time.Time // its send_time
	sent       map[string]time.Time
}

// Quota rules (§6).
const (
	quotaPerMessage = 5
	quotaWindow     = 48 * time.Hour
	// sendTimeResolution is send_time's resolution: sends within a message's second count as earlier.
	sendTimeResolution = time.Second
)

func newQuotaBook(now func() time.Time) *quotaBook {
	return &quotaBook{now: now, m: make(map[string]*window)}
}

func (q *quotaBook) window(key string) *window {
	w := q.m[key]
	if w == nil {
		w = &window{sent: make(map[string]time.Time, quotaPerMessage)}
		q.m[key] = w
	}
	return w
}

// observe notes a customer message: if it is newer than the window's anchor, the count restarts
// from the sends made after it.
func (q *quotaBook) observe(m *Message) {
	key := customerKey(m.OpenKfID, m.ExternalUserID)
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.window(key)
	if w.anchor != m.MsgID && !m.SendTime.Before(w.anchorTime) {
		w.anchor, w.anchorTime = m.MsgID, m.SendTime
		cut := m.SendTime.Add(sendTimeResolution)
		for id, at := range w.sent {
			if at.Before(cut) {
				delete(w.sent, id)
			}
		}
	}
	q.ops++
	if q.ops%1024 == 0 {
		q.prune()
	}
}

// prune drops windows past 48 h: nothing can be sent in them anyway.
func (q *quotaBook) prune() {
	cut := q.now().Add(-quotaWindow)
	for k, w := range q.m {
		if !w.anchorTime.IsZero() && w.anchorTime.Before(cut) {
			delete(q.m, k)
		}
	}
}

func (q *quotaBook) left(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.m[key]; w != nil {
		return max(quotaPerMessage-len(w.sent), 0)
	}
	return quotaPerMessage
}

func (q *quotaBook) expired(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.m[key]
	return w != nil && !w.anchorTime.IsZero() && q.now().Sub(w.anchorTime) > quotaWindow
}

// take counts the send id against the window; false when the quota is used up. Taking an id
// already counted is free (the same client msgid is the same message).
func (q *quotaBook) take(key, id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.window(key)
	if _, ok := w.sent[id]; ok {
		return true
	}
	if len(w.sent) >= quotaPerMessage {
		return false
	}
	w.sent[id] = q.now()
	return true
}

func (q *quotaBook) release(key, id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.m[key]; w != nil {
		delete(w.sent, id)
	}
}

// exhaust records that WeCom says the quota is used (95001).
func (q *quotaBook) exhaust(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.window(key)
	now := q.now()
	for i := 0; len(w.sent) < quotaPerMessage; i++ {
		w.sent[fmt.Sprintf("\x00wecom-%d", i)] = now
	}
}

// stateCache remembers session states briefly, so a burst of replies costs one service_state/get.
// session_status_change events, Handoff and 95018 answers update it.
type stateCache struct {
	mu sync.Mutex
	m  map[string]stateEntry
}

type stateEntry struct {
	st ServiceStateValue
	at time.Time
}

// stateTTL bounds how stale a cached state may be; a human taking over within it still meets
// 95018, which the Replier reports as ErrHumanServicer.
const stateTTL = 5 * time.Second

func newStateCache() *stateCache { return &stateCache{m: make(map[string]stateEntry)} }

func (c *stateCache) get(key string, now time.Time) (ServiceStateValue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) > stateTTL || now.Before(e.at) {
		return 0, false
	}
	return e.st, true
}

func (c *stateCache) put(key string, st ServiceStateValue, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 100_000 {
		clear(c.m)
	}
	c.m[key] = stateEntry{st, now}
}

func (c *stateCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// Stats is a snapshot of a Channel's counters since it started.
type Stats struct {
	Callbacks         int64 // callbacks accepted (200)
	Coalesced         int64 // callbacks that needed no pull: a retry already covered by one
	CallbacksRejected int64 // callbacks refused: bad signature, malformed, too large
	Pulls             int64 // sync_msg pages pulled
	Messages          int64 // messages received in those pages
	Dispatched        int64 // messages handed to hooks
	Handled           int64 // messages whose hooks finished and that were marked done
	DedupeHits        int64 // messages skipped because they were already done or in flight
	HistorySkipped    int64 // messages skipped as history (skip-history)
	Replies           int64 // sends WeCom accepted
	DuplicateSends    int64 // sends WeCom refused as already sent (a replay or retry was absorbed)
	HandlerErrors     int64 // hook calls that returned an error or panicked
	WelcomeExpired    int64 // welcome codes that were too old to use
	// ErrorsByCode counts API errors by WeCom errcode; local failures (stores, network) are
	// under 0.
	ErrorsByCode map[int]int64
	QueueDepth   int // messages waiting for a worker
	InFlight     int // messages pulled and not yet done
}

type stats struct {
	callbacks, rejected, pulls, messages, dispatched, handled atomic.Int64
	dedupeHits, history, replies, duplicateSends              atomic.Int64
	handlerErrors, welcomeExpired, coalesced                  atomic.Int64

	mu     sync.Mutex
	errors map[int]int64
}

// Stats returns the Channel's counters.
func (ch *Channel) Stats() Stats {
	s := Stats{
		Callbacks: ch.stats.callbacks.Load(), Coalesced: ch.stats.coalesced.Load(), CallbacksRejected: ch.stats.rejected.Load(),
		Pulls: ch.stats.pulls.Load(), Messages: ch.stats.messages.Load(),
		Dispatched: ch.stats.dispatched.Load(), Handled: ch.stats.handled.Load(),
		DedupeHits: ch.stats.dedupeHits.Load(), HistorySkipped: ch.stats.history.Load(),
		Replies: ch.stats.replies.Load(), DuplicateSends: ch.stats.duplicateSends.Load(),
		HandlerErrors: ch.stats.handlerErrors.Load(), WelcomeExpired: ch.stats.welcomeExpired.Load(),
		QueueDepth: ch.disp.queued(),
	}
	ch.stats.mu.Lock()
	s.ErrorsByCode = make(map[int]int64, len(ch.stats.errors))
	for k, v := range ch.stats.errors {
		s.ErrorsByCode[k] = v
	}
	ch.stats.mu.Unlock()
	s.InFlight = int(s.Dispatched - s.Handled)
	return s
}

func (ch *Channel) noteCode(err error) {
	code := ErrorCode(err)
	ch.stats.mu.Lock()
	ch.stats.errors[code]++
	ch.stats.mu.Unlock()
}

// noteErr logs and counts an error of a background operation.
func (ch *Channel) noteErr(op string, err error) {
	ch.noteCode(err)
	ch.log.Warn("wxkf: "+op, "err", err)
}
