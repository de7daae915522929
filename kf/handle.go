package kf

import (
	"context"
	"errors"
	"time"

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
}

func (s *session) newItem(m *Message, reply []byte) *item {
	return &item{s: s, m: m, key: customerKey(m.OpenKfID, customerOf(m)), size: messageSize(m), reply: reply}
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
	if !s.ch.disp.submit(it.key, &job{run: it.run, ctx: s.ctx, size: it.size}) {
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
	s.tr.abandon(it.m.MsgID)
	s.mu.Lock()
	s.blocked[it.key] = true
	s.mu.Unlock()
	s.jobEnded(it.key)
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
	oc, err := ch.attempt(it)
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
// (a holder that lost it cannot) together with whatever else finished meanwhile. The customer's next
// message does not wait for the store: its replies can only follow this message's, which were all
// sent. The cursor moves past the message once the mark is written.
func (it *item) markDone() {
	s := it.s
	s.mu.Lock()
	s.marks = append(s.marks, it)
	s.mu.Unlock()
	select {
	case s.markSig <- struct{}{}:
	default:
	}
}

// marker writes the done marks of its session in batches: one store write covers every message
// that finished while the previous write ran. A lost lease abandons the batch (the next holder
// replays those messages, and their reply records keep their replies from going out twice); a store
// error is retried with backoff.
func (s *session) marker(stop <-chan struct{}, done chan<- struct{}) {
	ch := s.ch
	defer close(done)
	bo := ch.newBackoff()
	for {
		final := false
		select {
		case <-s.markSig:
		case <-stop:
			final = true
		}
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

// maxMarkBatch bounds the msgids of one done-mark write.
const maxMarkBatch = 1000

func (s *session) writeMarks(batch []*item, bo *backoff) {
	ch := s.ch
	ids := make([]string, len(batch))
	for i, it := range batch {
		ids[i] = it.m.MsgID
	}
	for {
		err := s.lease.MarkDone(s.ctx, ids...)
		if err == nil {
			bo.reset()
			for _, it := range batch {
				ch.stats.handled.Add(1)
				s.tr.done(it.m.MsgID)
				s.jobEnded(it.key)
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
		it.abandon()
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
	if it.rec == nil {
		rec, err := decodeReplyRecord(it.reply)
		if err != nil {
			// The store holds a record this version cannot read: nothing may be sent that could
			// mix with what it describes.
			ch.log.Error("wxkf: unreadable reply record; this message's reply is suppressed",
				"open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", err)
			rec = &replyRecord{unreadable: true}
		}
		it.rec = rec
	}
	hctx, cancel := context.WithTimeout(s.ctx, ch.cfg.handlerTO)
	if it.attempts > 1 {
		hctx = PriorityContext(hctx, PriorityRetry) // fresh messages' replies go first
	}
	r := ch.newReplier(it, s)
	err := ch.runHooks(hctx, it.m, r)
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
		ch.log.Error("wxkf: handler panicked", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "err", cause)
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
		return safeCall(ctx, r, m, *h)
	}
	// Events (origin 4), human servicers' messages (origin 5), anything else.
	if m.Event != nil {
		switch m.Event.EventType {
		case EventEnterSession:
			ch.welcome(ctx, m)
		case EventSessionStatusChange:
			ch.states.forget(customerKey(m.OpenKfID, customerOf(m)))
		}
	}
	if h := ch.onEvent.Load(); h != nil && *h != nil {
		return safeCall(ctx, r, m, MessageHandler(*h))
	}
	return nil
}

func safeCall(ctx context.Context, r Replier, m *Message, h MessageHandler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{v}
		}
	}()
	return h(ctx, m, r)
}

// deadLetter hands a message that cannot be answered to the dead-letter hook, counts and logs it.
// The message is marked done afterwards: it is the last thing that happens to it.
func (ch *Channel) deadLetter(ctx context.Context, it *item, err error) {
	ch.stats.deadLetters.Add(1)
	ch.log.Error("wxkf: message dead-lettered", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID,
		"msgtype", string(it.m.MsgType), "attempts", it.attempts, "err", err)
	h := ch.onDead.Load()
	if h == nil || *h == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, ch.cfg.handlerTO)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			ch.log.Error("wxkf: dead-letter hook panicked", "open_kfid", it.m.OpenKfID, "msgid", it.m.MsgID, "panic", v)
		}
	}()
	(*h)(hctx, it.m, err)
}
