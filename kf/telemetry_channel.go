package kf

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// The Channel's metrics and spans. The engine calls the note* helpers where it counts its Stats;
// everything here is cheap when no SDK is installed: attribute sets are built once per value
// combination, and span attributes only for recording spans.

// callbackResult is the wxkf.callback.result of a callback request.
type callbackResult uint8

const (
	callbackAccepted     callbackResult = iota // 200: a pull was started or will cover it (or another event)
	callbackCoalesced                          // 200: a repeat of a callback a pull already covers
	callbackVerified                           // GET: the URL verification answered
	callbackForged                             // 403: bad signature or receiver id
	callbackStale                              // 403: timestamp outside the replay window
	callbackMalformed                          // 400
	callbackTooLarge                           // 413
	callbackShuttingDown                       // 503
	numCallbackResults
)

var callbackResultNames = [numCallbackResults]string{
	"accepted", "coalesced", "verified", "forged", "stale", "malformed", "too_large", "shutting_down",
}

// handlerResult is the wxkf.outcome of a handler run.
type handlerResult uint8

const (
	handlerOK           handlerResult = iota // done, no error
	handlerError                             // done with a Replier refusal (*ReplyError, ErrReplySuperseded)
	handlerRetried                           // a transient failure: run again later
	handlerDeadLettered                      // given up: a permanent failure or the horizon passed
	handlerPanic                             // panicked (dead-lettered)
	handlerDropped                           // left for the next holding: lease lost, stopping, no handler yet
	numHandlerResults
)

var handlerResultNames = [numHandlerResults]string{"ok", "error", "retried", "dead_lettered", "panic", "dropped"}

func handlerResultOf(oc outcome, err error) handlerResult {
	switch oc {
	case outcomeDone:
		if err == nil {
			return handlerOK
		}
		return handlerError
	case outcomeRetry:
		return handlerRetried
	case outcomeDeadLetter:
		var pe *panicError
		if errors.As(err, &pe) {
			return handlerPanic
		}
		return handlerDeadLettered
	}
	return handlerDropped
}

// Send outcomes (wxkf.outcome of wxkf.send.*).
const (
	sendAccepted  = "accepted"  // WeCom accepted the message
	sendDuplicate = "duplicate" // refused as a repeated client msgid: an earlier run's send got through
	sendRefused   = "refused"   // WeCom answered an errcode (wxkf.errcode says which)
	sendFailed    = "failed"    // no answer: network, HTTP or token failure
)

func sendOutcome(err error) string {
	switch {
	case err == nil:
		return sendAccepted
	case isDuplicateMsgID(err):
		return sendDuplicate
	case ErrorCode(err) != 0:
		var tfe *tokenFetchError
		if errors.As(err, &tfe) {
			return sendFailed // gettoken's errcode, not send_msg's
		}
		return sendRefused
	}
	return sendFailed
}

// channelTel holds a Channel's tracer and instruments.
type channelTel struct {
	meter          metric.Meter
	tracer         *spanStarter
	traceCustomers bool

	callbacks, pulls, messages, sends, quotaDrops metric.Int64Counter
	dedupeHits, retries, deadLetters, leaseLosses metric.Int64Counter
	pullDuration, handlerDuration, sendDuration   metric.Float64Histogram
	pullMessages                                  metric.Int64Histogram
	inFlight, queued, queuedBytes, leaseHeld      metric.Int64ObservableGauge
	cursorLag                                     metric.Float64ObservableGauge
	reg                                           metric.Registration
	callbackStart, pullStart, messageStart        []trace.SpanStartOption
	callbackMeasures                              [numCallbackResults]*measure
	accounts, pullsBy, messagesBy, handlersBy     measureCache
	sendsBy, sendDurationsBy                      measureCache
}

func newChannelTel(cfg telemetryConfig) (*channelTel, error) {
	in := &instruments{m: cfg.meter()}
	t := &channelTel{
		meter:          in.m,
		tracer:         cfg.tracer(),
		traceCustomers: cfg.traceCustomers,
		callbacks:      in.counter("wxkf.callback.count", "{callback}", "Callback requests by result."),
		pulls:          in.counter("wxkf.pull.count", "{pull}", "sync_msg pages pulled, by account and outcome."),
		pullDuration:   in.durations("wxkf.pull.duration", "Time to pull one sync_msg page and queue its messages."),
		pullMessages: in.histogram("wxkf.pull.messages", "{message}", "Messages per sync_msg page.",
			pageBuckets),
		messages: in.counter("wxkf.message.count", "{message}",
			"Messages received (first seen in this process), by account, msgtype and origin."),
		handlerDuration: in.durations("wxkf.handler.duration", "Duration of one handler run, by account and outcome."),
		sends: in.counter("wxkf.send.count", "{message}",
			"Messages sent to customers, by account, msgtype, outcome and WeCom errcode."),
		sendDuration: in.durations("wxkf.send.duration", "Latency of one send, by account and outcome."),
		quotaDrops: in.counter("wxkf.quota.drop.count", "{message}",
			"Reply messages not sent because the 5-message quota was used (a *ReplyError with ErrQuotaExceeded)."),
		dedupeHits: in.counter("wxkf.dedupe.hit.count", "{message}",
			"Pulled messages skipped because they were already done or in flight."),
		retries:     in.counter("wxkf.retry.count", "{retry}", "Handler reruns scheduled after a transient failure."),
		deadLetters: in.counter("wxkf.dead_letter.count", "{message}", "Messages given up and sent to the dead-letter hook."),
		leaseLosses: in.counter("wxkf.lease.loss.count", "{loss}", "Account leases lost while held."),
		inFlight:    in.gauge("wxkf.message.in_flight", "{message}", "Messages queued, running or waiting for a retry."),
		queued:      in.gauge("wxkf.message.queued", "{message}", "Messages waiting for a worker (retries included)."),
		queuedBytes: in.gauge("wxkf.message.queued_bytes", "By", "Estimated memory of the messages held in queues."),
		leaseHeld:   in.gauge("wxkf.lease.held", "{lease}", "1 while this process holds the account's lease."),
		cursorLag: in.floatGauge("wxkf.cursor.lag", "s",
			"Now minus the send_time of the newest message handled, per account."),
		callbackStart: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
		pullStart:     []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)},
		messageStart:  []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)},
	}
	for i := range t.callbackMeasures {
		t.callbackMeasures[i] = newMeasure(keyCallbackResult.String(callbackResultNames[i]))
	}
	return t, in.err
}

// register starts the observable gauges; Shutdown unregisters them.
func (t *channelTel) register(ch *Channel) error {
	r, err := t.meter.RegisterCallback(ch.observe, t.inFlight, t.queued, t.queuedBytes, t.leaseHeld, t.cursorLag)
	if err != nil {
		return err
	}
	t.reg = r
	return nil
}

// unregister stops the gauges (Shutdown), so that the provider lets go of the Channel.
func (t *channelTel) unregister() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}

// Measures of each attribute combination.

func (t *channelTel) account(id string) *measure {
	return t.accounts.get(measureKey{a: id}, func(k measureKey) *measure { return newMeasure(keyOpenKfID.String(k.a)) })
}

func (t *channelTel) pullMeasure(id string, ok bool) *measure {
	out := "ok"
	if !ok {
		out = "error"
	}
	return t.pullsBy.get(measureKey{a: id, b: out}, func(k measureKey) *measure {
		return newMeasure(keyOpenKfID.String(k.a), keyOutcome.String(k.b))
	})
}

func (t *channelTel) messageMeasure(id string, m *Message) *measure {
	return t.messagesBy.get(measureKey{a: id, b: msgTypeLabel(m.MsgType), n: originLabel(m.Origin)}, func(k measureKey) *measure {
		return newMeasure(keyOpenKfID.String(k.a), keyMsgType.String(k.b), keyOrigin.Int(k.n))
	})
}

func (t *channelTel) handlerMeasure(id string, r handlerResult) *measure {
	return t.handlersBy.get(measureKey{a: id, n: int(r)}, func(k measureKey) *measure {
		return newMeasure(keyOpenKfID.String(k.a), keyOutcome.String(handlerResultNames[k.n]))
	})
}

func (t *channelTel) sendMeasures(id string, mt MsgType, out string, code int) (count, latency *measure) {
	count = t.sendsBy.get(measureKey{a: id, b: msgTypeLabel(mt), c: out, n: code}, func(k measureKey) *measure {
		return newMeasure(keyOpenKfID.String(k.a), keyMsgType.String(k.b), keyOutcome.String(k.c), keyErrCode.Int(k.n))
	})
	latency = t.sendDurationsBy.get(measureKey{a: id, c: out}, func(k measureKey) *measure {
		return newMeasure(keyOpenKfID.String(k.a), keyOutcome.String(k.c))
	})
	return count, latency
}

// Callbacks.

// startCallback starts the span of one callback request, a child of the request's context (an
// HTTP server instrumentation's span, if any).
func (ch *Channel) startCallback(r *http.Request) (context.Context, trace.Span) {
	ctx, span := ch.tel.tracer.Start(r.Context(), "wxkf.callback", ch.tel.callbackStart...)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", r.Method))
	}
	return ctx, span
}

// noteCallback counts a callback's result and puts it on its span.
func (ch *Channel) noteCallback(ctx context.Context, res callbackResult, openKfID string) {
	ch.tel.callbacks.Add(ctx, 1, ch.tel.callbackMeasures[res].add...)
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if openKfID != "" {
		span.SetAttributes(keyCallbackResult.String(callbackResultNames[res]), keyOpenKfID.String(openKfID))
	} else {
		span.SetAttributes(keyCallbackResult.String(callbackResultNames[res]))
	}
	if res >= callbackForged {
		span.SetStatus(codes.Error, callbackResultNames[res])
	}
}

// Pulls.

// startPull starts the span of one sync_msg page; the messages it delivers link to it.
func (s *session) startPull(req SyncMsgRequest) (context.Context, trace.Span, time.Time) {
	t := s.ch.tel
	ctx, span := t.tracer.Start(s.ch.pullCtx, "wxkf.pull", t.pullStart...)
	if span.IsRecording() {
		span.SetAttributes(keyOpenKfID.String(s.a.id), attribute.Int("wxkf.pull.limit", req.Limit),
			attribute.Bool("wxkf.pull.token", req.Token != ""))
	}
	s.pullSpan = span.SpanContext()
	return ctx, span, time.Now()
}

// endPull records a page: pulled (err nil) and queued (dispatched), or not.
func (s *session) endPull(ctx context.Context, span trace.Span, start time.Time, resp *SyncMsgResponse, err error, dispatched bool) {
	ch, t := s.ch, s.ch.tel
	ok := err == nil && dispatched
	ms := t.pullMeasure(s.a.id, ok)
	t.pulls.Add(ctx, 1, ms.add...)
	t.pullDuration.Record(ctx, time.Since(start).Seconds(), ms.rec...)
	if resp != nil {
		t.pullMessages.Record(ctx, int64(len(resp.Messages)), t.account(s.a.id).rec...)
	}
	if ok {
		s.a.obs.lastPull.Store(ch.now().UnixNano())
	}
	if span.IsRecording() {
		if resp != nil {
			span.SetAttributes(attribute.Int("wxkf.pull.messages", len(resp.Messages)),
				attribute.Bool("wxkf.pull.has_more", resp.HasMore))
		}
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, "sync_msg failed")
		case !dispatched:
			span.SetStatus(codes.Error, "store lookup failed; the page is pulled again")
		}
	}
	span.End()
}

// Messages.

// noteMessage counts a message received for the first time in this holding.
func (ch *Channel) noteMessage(openKfID string, m *Message) {
	ch.tel.messages.Add(context.Background(), 1, ch.tel.messageMeasure(openKfID, m).add...)
}

// noteDedupe counts a pulled message skipped as done or in flight.
func (ch *Channel) noteDedupe(openKfID string) {
	ch.tel.dedupeHits.Add(context.Background(), 1, ch.tel.account(openKfID).add...)
}

// observeAttempt runs one attempt of the message's hooks (attempt) inside its span, and records
// its duration and outcome. The span is a root linked to the pull that delivered the message (for
// a burst, one link per message, to the pull that delivered it); the context the hooks get
// carries it, so the application's own spans nest under it.
func (ch *Channel) observeAttempt(it *item) (outcome, error) {
	ctx, start := ch.startMessage(it)
	oc, err := ch.attempt(it)
	ch.endMessage(ctx, it, start, oc, err)
	return oc, err
}

// startMessage starts the span of an attempt (it.span) and returns its context and start time.
func (ch *Channel) startMessage(it *item) (context.Context, time.Time) {
	t := ch.tel
	m := it.m
	opts := t.messageStart
	if it.pullSpan.IsValid() {
		opts = append(opts[:len(opts):len(opts)], trace.WithLinks(it.pullLinks()...))
	}
	ctx, span := t.tracer.Start(it.s.ctx, "wxkf.message", opts...)
	if span.IsRecording() {
		kv := make([]attribute.KeyValue, 0, 7)
		kv = append(kv, keyOpenKfID.String(m.OpenKfID), keyMsgID.String(m.MsgID),
			keyMsgType.String(string(m.MsgType)), keyOrigin.Int(int(m.Origin)), keyAttempt.Int(it.attempts+1))
		if u := customerOf(m); t.traceCustomers && u != "" {
			kv = append(kv, keyExternalUserID.String(u))
		}
		if len(it.burst) > 0 {
			kv = append(kv, keyBurstSize.Int(len(it.burst)+1))
		}
		span.SetAttributes(kv...)
	}
	it.span = span
	return ctx, time.Now()
}

// pullLinks links an attempt's span to the pull that delivered each message it answers, the
// message's msgid on the link: one link, or one per message of a burst, oldest first.
func (it *item) pullLinks() []trace.Link {
	links := make([]trace.Link, 0, len(it.burst)+1)
	for _, x := range it.members() {
		if x.pullSpan.IsValid() {
			links = append(links, trace.Link{SpanContext: x.pullSpan, Attributes: []attribute.KeyValue{keyMsgID.String(x.m.MsgID)}})
		}
	}
	return links
}

// endMessage records an attempt's duration and outcome and ends its span.
func (ch *Channel) endMessage(ctx context.Context, it *item, start time.Time, oc outcome, err error) {
	t := ch.tel
	res := handlerResultOf(oc, err)
	t.handlerDuration.Record(ctx, time.Since(start).Seconds(), t.handlerMeasure(it.m.OpenKfID, res).rec...)
	span := it.span
	if span.IsRecording() {
		span.SetAttributes(keyOutcome.String(handlerResultNames[res]))
		if err != nil {
			span.RecordError(err)
		}
		if res >= handlerRetried && res != handlerDropped {
			span.SetStatus(codes.Error, handlerResultNames[res])
		}
	}
	span.End()
	it.span = nil
}

// withSpan returns ctx carrying span, unless the span has nothing to propagate (no SDK installed).
func withSpan(ctx context.Context, span trace.Span) context.Context {
	if span == nil || !span.SpanContext().IsValid() {
		return ctx
	}
	return trace.ContextWithSpan(ctx, span)
}

// noteRetry counts a rerun scheduled for a message.
func (ch *Channel) noteRetry(openKfID string) {
	ch.tel.retries.Add(context.Background(), 1, ch.tel.account(openKfID).add...)
}

// noteDeadLetter counts a message given up.
func (ch *Channel) noteDeadLetter(ctx context.Context, openKfID string) {
	ch.tel.deadLetters.Add(ctx, 1, ch.tel.account(openKfID).add...)
}

// Replies.

// noteSend records one send_msg (or send_msg_on_event) of msgtype mt that started at start.
func (ch *Channel) noteSend(ctx context.Context, openKfID string, mt MsgType, start time.Time, err error) {
	out := sendOutcome(err)
	code := 0
	if out == sendRefused || out == sendDuplicate {
		code = ErrorCode(err)
	}
	count, latency := ch.tel.sendMeasures(openKfID, mt, out, code)
	ch.tel.sends.Add(ctx, 1, count.add...)
	ch.tel.sendDuration.Record(ctx, time.Since(start).Seconds(), latency.rec...)
}

// do runs one Replier call (reply) and counts the messages the 5-message quota dropped from it.
func (r *replier) do(ctx context.Context, kind, hash string, build func(ctx context.Context, left int) ([]Content, *ReplyError, error)) error {
	err := r.reply(ctx, kind, hash, build)
	var re *ReplyError
	if err != nil && errors.As(err, &re) && re.Dropped > 0 && errors.Is(re.Reason, ErrQuotaExceeded) {
		r.ch.tel.quotaDrops.Add(ctx, int64(re.Dropped), r.ch.tel.account(r.openKfID).add...)
	}
	return err
}

// Leases and the gauges.

// accountObs is what the gauges and Health read of an account.
type accountObs struct {
	lastPull atomic.Int64 // Channel-clock unix ns of the last page pulled and queued; 0: none yet
	newest   atomic.Int64 // unix ns of the send_time of the newest message handled; 0: none yet
	held     atomic.Bool  // this process holds the lease
}

// handled notes a message marked done.
func (o *accountObs) handled(sendTime time.Time) {
	if sendTime.IsZero() {
		return
	}
	n := sendTime.UnixNano()
	for {
		cur := o.newest.Load()
		if cur >= n || o.newest.CompareAndSwap(cur, n) {
			return
		}
	}
}

// noteLeaseLoss counts a lease lost while held.
func (ch *Channel) noteLeaseLoss(openKfID string) {
	ch.tel.leaseLosses.Add(context.Background(), 1, ch.tel.account(openKfID).add...)
}

// accountList returns the accounts this process has seen.
func (ch *Channel) accountList() []*account {
	ch.accMu.Lock()
	defer ch.accMu.Unlock()
	out := make([]*account, 0, len(ch.accounts))
	for _, a := range ch.accounts {
		out = append(out, a)
	}
	return out
}

// observe reports the gauges.
func (ch *Channel) observe(_ context.Context, o metric.Observer) error {
	t := ch.tel
	o.ObserveInt64(t.inFlight, ch.stats.inflight.Load())
	o.ObserveInt64(t.queued, int64(ch.disp.queued()))
	b, _ := ch.disp.usage()
	o.ObserveInt64(t.queuedBytes, b)
	now := ch.now()
	for _, a := range ch.accountList() {
		ms := t.account(a.id)
		var held int64
		if a.obs.held.Load() {
			held = 1
		}
		o.ObserveInt64(t.leaseHeld, held, ms.obs...)
		if n := a.obs.newest.Load(); n != 0 {
			o.ObserveFloat64(t.cursorLag, max(now.Sub(time.Unix(0, n)).Seconds(), 0), ms.obs...)
		}
	}
	return nil
}
