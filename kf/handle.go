package kf

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wxkf/wxkf/cursor"
)

// item is one pulled message on its way through the hooks.
type item struct {
	s     *session
	m     *Message
	key   string // the customer: order is kept per key
	size  int64  // estimated bytes held while queued
	reply []byte // the reply record stored by an earlier run (an outbox record), if any

	attempts int
	first    time.Time // when the first attempt started, by the Channel's clock
	rec      *replyRecord

	formed   bool              // the burst (WithBurstWindow) was formed
	burst    []*item           // the customer's later messages answered with this one, in order
	pullSpan trace.SpanContext // the span of the pull that delivered it
	span     trace.Span        // the span of the attempt running, if any
}

func (s *session) newItem(m *Message, reply []byte) *item {
	return &item{s: s, m: m, key: customerKey(m.OpenKfID, customerOf(m)), size: messageSize(m), reply: reply, pullSpan: s.pullSpan}
}

// messageSize estimates the memory a queued message holds.
func messageSize(m *Message) int64 {
	n := 512 + len(m.MsgID) + len(m.OpenKfID) + len(m.ExternalUserID) + len(m.ServicerUserID) + len(m.Raw)
	if m.Text != nil {
		n += len(m.Text.Content) + len(m.Text.MenuID)
	}
	if m.MergedMsg != nil {
		for _, it := range m.MergedMsg.Items {
			n += 128 + len(it.MsgContent)
		}
	}
	if m.Event != nil {
		n += 256 + len(m.Event.Raw)
	}
	return int64(n)
}

// submit queues it behind the earlier messages of its customer.
func (s *session) submit(it *item) {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	s.ch.stats.dispatched.Add(1)
	s.ch.stats.inflight.Add(1)
	if !s.ch.disp.submit(it.key, &job{run: it.run, ctx: s.ctx, size: it.size, it: it}) {
		it.abandon()
	}
}

// jobEnded accounts for a job that left the dispatcher.
func (s *session) jobEnded(key string) {
	s.ch.stats.inflight.Add(-1)
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
	s.poke()
	s.maybeRewind(key)
}

func (s *session) isBlocked(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[key]
}

// abandon leaves the message for the next holding (or the next start): it is not marked done, so
// the cursor never passes it, and the customer's later messages in this holding are abandoned too,
// so that their order survives the replay.
func (it *item) abandon() {
	s := it.s
	for _, x := range it.members() {
		s.tr.abandon(x.m.MsgID)
	}
	s.mu.Lock()
	s.blocked[it.key] = true
	s.mu.Unlock()
	for range it.members() {
		s.jobEnded(it.key)
	}
}

// members returns the items this one answers: itself and the rest of its burst.
func (it *item) members() []*item {
	return append([]*item{it}, it.burst...)
}

// outcome is what becomes of a message after an attempt.
type outcome int

const (
	outcomeDone       outcome = iota // mark done
	outcomeRetry                     // run again after a delay
	outcomeDeadLetter                // give up: the dead-letter hook, then mark done
	outcomeDrop                      // leave it for the next holding (lease lost, stopping, hard stop)
)

// run is the message's job in the dispatcher: one attempt, then done, retry later, dead letter or
// drop. Nothing starts unless the holding is still valid: a replica whose lease is gone drops its
// queue instead of handling messages another replica now owns.
func (it *item) run() time.Duration {
	s := it.s
	ch := s.ch
	if !s.valid() || s.isBlocked(it.key) {
		it.abandon()
		return 0
	}
	if s.markPending(it.key) {
		return markWait // parked, holding no worker, until the previous message's mark is written
	}
	if ch.cfg.burstWindow > 0 && !it.formed {
		if wait := s.burstWait(it); wait > 0 && ch.pullCtx.Err() == nil {
			return wait // the customer may still be writing
		}
		it.formBurst()
	}
	oc, err := ch.observeAttempt(it)
	switch oc {
	case outcomeRetry:
		if ch.pullCtx.Err() != nil {
			// Shutting down: do not wait for a backoff. The message is replayed at the next start.
			ch.log.Info("wxkf: message left for the next start (shutting down during its retries)",
				"open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", err)
			it.abandon()
			return 0
		}
		d := ch.retryDelay(it.attempts, err)
		ch.stats.retries.Add(1)
		ch.noteRetry(it.m.OpenKfID)
		ch.log.Warn("wxkf: handler will be retried", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID,
			"attempt", it.attempts, "in", d, "err", err)
		return d
	case outcomeDrop:
		it.abandon()
		return 0
	case outcomeDeadLetter:
		ch.deadLetter(s.ctx, it, err)
	}
	it.markDone()
	return 0
}

// markDone hands the message to the session's marker, which records it as done through the lease
// (a holder that lost it cannot) together with whatever else finished meanwhile. The worker is free
// at once; the customer's next message waits for the mark (markPending), other customers do not. The
// cursor moves past the message once the mark is written.
func (it *item) markDone() {
	s := it.s
	s.mu.Lock()
	s.marks = append(s.marks, it)
	s.unmarked[it.key] = it
	s.mu.Unlock()
	select {
	case s.markSig <- struct{}{}:
	default:
	}
}

// markPending reports whether the done mark of the customer's previous message is still to be
// written, and if so tells the marker to write it at once (without lingering). A customer's message
// starts only once the previous one is marked: a replay after a crash must never find an earlier
// message of the customer unmarked after a later one was answered, since its answer could differ
// by then (the session came back from a human, WeCom's window opened again) and would reach the
// customer out of order.
func (s *session) markPending(key string) bool {
	s.mu.Lock()
	pending := s.unmarked[key] != nil
	s.mu.Unlock()
	if pending {
		select {
		case s.markNow <- struct{}{}:
		default:
		}
	}
	return pending
}

// markWait bounds how long a message stays parked behind its customer's previous done mark: the
// mark's settling unparks it at once (settleMark); this only covers a settle that came between the
// check and the parking.
const markWait = 50 * time.Millisecond

// settleMark records that its done mark was written or abandoned, which lets the customer's next
// message start.
func (s *session) settleMark(it *item) {
	s.mu.Lock()
	settled := s.unmarked[it.key] == it
	if settled {
		delete(s.unmarked, it.key)
	}
	s.mu.Unlock()
	if settled {
		s.ch.disp.unpark(it.key) // the customer's next message, if it waits
	}
}

// marker writes the done marks of its session in batches: one store write covers every message
// that finished while the previous write ran, or within markLinger of its start. A lost lease abandons the batch (the next holder
// replays those messages, and their reply records keep their replies from going out twice); a store
// error is retried with backoff.
func (s *session) marker(stop <-chan struct{}, done chan<- struct{}) {
	ch := s.ch
	defer close(done)
	bo := ch.newBackoff()
	var last time.Time // when the last write started
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	for {
		final := false
		select {
		case <-s.markSig:
		case <-stop:
			final = true
		}
		if wait := markLinger - time.Since(last); !final && wait > 0 {
			// A write went out a moment ago: collect what finishes meanwhile into the next one.
			linger.Reset(wait)
			select {
			case <-linger.C:
			case <-s.markNow: // a customer's next message waits for one of these marks
				linger.Stop()
			case <-stop:
				linger.Stop()
				final = true
			}
		}
		last = time.Now()
		for {
			s.mu.Lock()
			n := min(len(s.marks), maxMarkBatch)
			batch := s.marks[:n:n]
			s.marks = s.marks[n:]
			s.mu.Unlock()
			if n == 0 {
				break
			}
			s.writeMarks(batch, bo)
		}
		if final {
			return
		}
	}
}

const (
	// maxMarkBatch bounds the msgids of one done-mark write.
	maxMarkBatch = 1000
	// markLinger is the least time between two done-mark writes of a session. A message that finishes
	// with no write in the last markLinger is marked at once; under load the marks of markLinger go
	// in one write (at the ceiling of 10,000 sends a minute, about 8 messages). What waits for the
	// marks: the cursor, the lease's release, and the customer's next message, which asks the marker
	// not to linger (markNow).
	markLinger = 50 * time.Millisecond
)

func (s *session) writeMarks(batch []*item, bo *backoff) {
	ch := s.ch
	var ids []string
	for _, it := range batch {
		for _, x := range it.members() {
			ids = append(ids, x.m.MsgID)
		}
	}
	for {
		err := s.lease.MarkDone(s.ctx, ids...)
		if err == nil {
			bo.reset()
			for _, it := range batch {
				for _, x := range it.members() {
					ch.stats.handled.Add(1)
					s.a.obs.handled(x.m.SendTime)
					s.tr.done(x.m.MsgID)
					s.jobEnded(x.key)
				}
				s.settleMark(it)
			}
			return
		}
		if errors.Is(err, cursor.ErrLeaseLost) || errors.Is(err, cursor.ErrReleased) || !s.valid() {
			s.lost()
			break
		}
		ch.noteErr("dedup mark", err, "open_kfid", s.a.id, "messages", len(ids))
		if !bo.wait(s.ctx) {
			break
		}
	}
	for _, it := range batch {
		it.abandon() // blocks the customer's later messages first
		s.settleMark(it)
	}
}

// attempt runs the hooks for the message once and classifies the result.
func (ch *Channel) attempt(it *item) (outcome, error) {
	s := it.s
	now := ch.now()
	if it.attempts == 0 {
		it.first = now
	}
	it.attempts++
	it.record()
	m := it.answered()
	hctx, cancel := context.WithTimeout(s.ctx, ch.cfg.handlerTO)
	hctx = withSpan(hctx, it.span)    // the handler's own spans nest under the message's
	hctx = withLogMessage(hctx, it.m) // the client's log lines name the message
	if it.attempts > 1 {
		hctx = PriorityContext(hctx, PriorityRetry) // fresh messages' replies go first
	}
	r := ch.newReplier(it, s, m)
	err := ch.runHooks(hctx, m, r)
	timedOut := hctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil
	cancel()

	switch {
	case !s.valid() || errors.Is(err, cursor.ErrLeaseLost) || errors.Is(r.failure, cursor.ErrLeaseLost) || err == errNoHandler:
		return outcomeDrop, err
	case err == nil && r.failure == nil:
		return outcomeDone, nil
	}
	cause := err
	switch {
	case timedOut:
		cause = errors.Join(ErrHandlerTimeout, err)
	case r.failure != nil && !transient(err):
		cause = r.failure // a transient send failure the handler did not pass on
	}
	ch.stats.handlerErrors.Add(1)
	ch.noteCode(cause)
	var pe *panicError
	switch {
	case errors.As(cause, &pe):
		ch.log.Error("wxkf: handler panicked", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", cause, "stack", string(pe.stack))
		return outcomeDeadLetter, cause
	case transient(cause):
		if ch.now().Sub(it.first) >= ch.cfg.retryHorizon {
			return outcomeDeadLetter, cause
		}
		return outcomeRetry, cause
	case isReplyOutcome(cause):
		// The Replier refused for a WeCom rule (quota, 48 h, session state) or to avoid mixing two
		// answers: expected, and retrying cannot change it.
		ch.log.Info("wxkf: reply not sent", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", cause)
		return outcomeDone, cause
	}
	return outcomeDeadLetter, cause
}

// errNoHandler: a customer message came before any OnMessage handler was set. It is left for
// when one is (OnMessage pulls again).
var errNoHandler = errors.New("kf: no OnMessage handler yet")

// record returns the message's reply record, decoding the stored one the first time.
func (it *item) record() *replyRecord {
	if it.rec == nil {
		rec, err := decodeReplyRecord(it.reply)
		if err != nil {
			// The store holds a record this version cannot read: nothing may be sent that could
			// mix with what it describes.
			it.s.ch.log.Error("wxkf: unreadable reply record; this message's reply is suppressed",
				"open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", err)
			rec = &replyRecord{unreadable: true}
		}
		it.rec = rec
	}
	return it.rec
}

// answered is the message the hook gets: the item's own, or for a burst its last message with
// Burst listing them all.
func (it *item) answered() *Message {
	if len(it.burst) == 0 {
		return it.m
	}
	last := *it.burst[len(it.burst)-1].m
	last.Burst = make([]*Message, 0, len(it.burst)+1)
	for _, x := range it.members() {
		last.Burst = append(last.Burst, x.m)
	}
	return &last
}

// burstWait is how long a customer message waits for the rest of its burst: until the window has
// passed since the customer's latest message was pulled.
func (s *session) burstWait(it *item) time.Duration {
	if it.m.Origin != OriginCustomer || it.m.MsgType == MsgTypeEvent {
		return 0
	}
	s.mu.Lock()
	last := s.lastPulled[it.key]
	s.mu.Unlock()
	return time.Until(last.Add(s.ch.cfg.burstWindow))
}

// formBurst takes the customer's messages queued right behind this one into its burst: each within
// the window of the one before it (by send_time), or, for a rerun, exactly those its reply record
// covers.
func (it *item) formBurst() {
	it.formed = true
	if it.m.Origin != OriginCustomer || it.m.MsgType == MsgTypeEvent {
		return
	}
	s := it.s
	var covers map[string]bool
	if rec := it.record(); len(rec.Covers) > 0 {
		covers = make(map[string]bool, len(rec.Covers))
		for _, id := range rec.Covers {
			covers[id] = true
		}
	}
	prev := it.m.SendTime
	for _, j := range s.ch.disp.takeFollowing(it.key, func(j *job) bool {
		o := j.it
		if o == nil || o.m.Origin != OriginCustomer || o.m.MsgType == MsgTypeEvent {
			return false
		}
		if covers != nil {
			return covers[o.m.MsgID]
		}
		if o.m.SendTime.Sub(prev) > s.ch.cfg.burstWindow {
			return false
		}
		prev = o.m.SendTime
		return true
	}) {
		it.burst = append(it.burst, j.it)
	}
	if len(it.burst) > 0 {
		s.ch.stats.bursts.Add(1)
	}
}

// isReplyOutcome reports the Replier's own refusals, which are outcomes, not failures.
func isReplyOutcome(err error) bool {
	var re *ReplyError
	return errors.As(err, &re) || errors.Is(err, ErrReplySuperseded)
}

// runHooks calls the hook the message is for.
func (ch *Channel) runHooks(ctx context.Context, m *Message, r *replier) error {
	if m.Origin == OriginCustomer && m.MsgType != MsgTypeEvent {
		h := ch.onMessage.Load()
		if h == nil {
			return errNoHandler
		}
		if *h == nil {
			return nil
		}
		return safeCall(ctx, r, m, ch.wrap(*h))
	}
	// Events (origin 4), human servicers' messages (origin 5), anything else.
	if m.Event != nil {
		switch m.Event.EventType {
		case EventEnterSession:
			ch.welcome(ctx, m)
		case EventSessionStatusChange:
			ch.states.forget(customerKey(m.OpenKfID, customerOf(m)))
			ch.sessionEnded(ctx, m)
		}
	}
	if h := ch.onEvent.Load(); h != nil && *h != nil {
		return safeCall(ctx, r, m, ch.wrap(*h))
	}
	return nil
}

func safeCall(ctx context.Context, r Replier, m *Message, h Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v: v, stack: debug.Stack()}
		}
	}()
	return h(ctx, m, r)
}

// deadLetter hands a message that cannot be answered to the dead-letter hook, counts and logs it.
// The message is marked done afterwards: it is the last thing that happens to it.
func (ch *Channel) deadLetter(ctx context.Context, it *item, err error) {
	for _, x := range it.members() { // a burst gives up on every message in it
		ch.stats.deadLetters.Add(1)
		ch.noteDeadLetter(ctx, x.m.OpenKfID)
		ch.log.Error("wxkf: message dead-lettered", "open_kfid", x.m.OpenKfID, "msgid", x.m.MsgID,
			"msgtype", string(x.m.MsgType), "attempt", it.attempts, "err", err)
	}
	h := ch.onDead.Load()
	if h == nil || *h == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, ch.cfg.handlerTO)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			ch.log.Error("wxkf: dead-letter hook panicked", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID,
				"err", fmt.Errorf("panic: %v", v))
		}
	}()
	(*h)(hctx, it.answered(), err) // a burst: its latest message, with every message in Burst
}
