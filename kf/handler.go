package kf

import (
	"context"
	"log/slog"
	"time"
)

// Handler answers one message. OnMessage's handler sees customer messages (origin 3), OnEvent's
// sees events (origin 4) and human servicers' messages (origin 5); both are called in order per
// customer and concurrently across customers, and their replies go through r. What the handler
// returns decides what becomes of the message:
//   - nil, or a *ReplyError or ErrReplySuperseded from r: done;
//   - a transient failure (WeCom busy, rate or concurrency limit, a network error of r or of the
//     handler's own calls, ctx's deadline) or Retry/RetryAfter: run again later, with backoff,
//     until the retry horizon (WithRetryHorizon); a send that failed transiently counts even if
//     the handler ignored it. A rerun cannot duplicate or mix a reply (see Replier);
//   - anything else, a panic, or the horizon passed: the dead-letter hook (OnDeadLetter), then
//     done.
//
// ctx ends when the handler timeout passes, when the Channel stops hard, and when this replica
// loses the account's lease (another replica handles the message then).
//
// A Router's Handle method is a Handler, and so is every Handler wrapped in Middleware.
type Handler func(ctx context.Context, m *Message, r Replier) error

// Middleware wraps a Handler, in the style of net/http middleware: it may look at the message
// before and the outcome after, answer itself, or not call next at all.
type Middleware func(next Handler) Handler

// Chain wraps h in mw: Chain(h, a, b) is a(b(h)), so a sees each message first. Nil middleware is
// skipped.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] != nil {
			h = mw[i](h)
		}
	}
	return h
}

// Use adds middleware around the OnMessage and OnEvent handlers, the first given outermost:
// Use(a, b) runs a, then b, then the handler. Later calls add inner layers. Middleware applies to
// every handler call that starts after Use returns, whichever order Use and OnMessage are called
// in; it sees customer messages and events alike (check m.Origin or m.Event where that matters,
// as LimitCustomers does). Nil middleware is skipped. Use is safe for concurrent use.
//
// There is no recovery middleware: the Channel recovers every handler panic (middleware
// included), logs it with its stack, and hands the message to OnDeadLetter, so a recovering
// middleware would only hide it.
func (ch *Channel) Use(mw ...Middleware) {
	for {
		old := ch.mw.Load()
		var next []Middleware
		if old != nil {
			next = append(next, *old...)
		}
		for _, m := range mw {
			if m != nil {
				next = append(next, m)
			}
		}
		if ch.mw.CompareAndSwap(old, &next) {
			return
		}
	}
}

// wrap applies the Channel's middleware to h.
func (ch *Channel) wrap(h Handler) Handler {
	if mw := ch.mw.Load(); mw != nil {
		return Chain(h, *mw...)
	}
	return h
}

// Logging returns middleware that logs one line per handler call (a turn) to l: Info when the
// handler returned nil or a reply outcome (a *ReplyError, ErrReplySuperseded), Warn otherwise.
// The line carries open_kfid, msgid (for a burst, its first message's, as the Channel's own lines),
// origin, msgtype, menu_id or event_type when set, how long the handler took, how many messages
// of the quota it used and its error; never the content or the customer's id. A nil l gives
// middleware that does nothing.
func Logging(l *slog.Logger) Middleware {
	return func(next Handler) Handler {
		if l == nil {
			return next
		}
		return func(ctx context.Context, m *Message, r Replier) error {
			start := time.Now()
			before := r.QuotaLeft()
			err := next(ctx, m, r)
			id := m.MsgID
			if len(m.Burst) > 0 {
				id = m.Burst[0].MsgID
			}
			attrs := []any{"open_kfid", m.OpenKfID, "msgid", id, "origin", int(m.Origin), "msgtype", string(m.MsgType)}
			if m.Text != nil && m.Text.MenuID != "" {
				attrs = append(attrs, "menu_id", m.Text.MenuID)
			}
			if m.Event != nil {
				attrs = append(attrs, "event_type", string(m.Event.EventType))
			}
			attrs = append(attrs, "duration", time.Since(start), "sent", max(before-r.QuotaLeft(), 0))
			level := slog.LevelInfo
			if err != nil {
				attrs = append(attrs, "err", err)
				if !isReplyOutcome(err) {
					level = slog.LevelWarn
				}
			}
			l.Log(ctx, level, "wxkf: turn", attrs...)
			return err
		}
	}
}
