package kf

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// endCodeWindow is how long a session-end msg_code is valid: 20 s, for one send_msg_on_event (§6).
const endCodeWindow = 20 * time.Second

// SessionEnd is a session that ended with a msg_code, which WeCom gives for one closing message
// (§5 session_status_change, §7 service_state/trans).
type SessionEnd struct {
	OpenKfID       string
	ExternalUserID string
	// ServicerUserID is the servicer who ended the session (the event's old_servicer_userid);
	// empty when it ended through Channel.EndSession.
	ServicerUserID string
	// Event is the session_status_change event; nil when the session ended through EndSession.
	Event *Message
}

// SessionEndHandler returns the closing message of an ended session: a *Text or *Menu (a
// satisfaction survey, say, built with Router.Menu so that the customer's click comes back to a
// route) that the Channel sends with send_msg_on_event within the msg_code's 20 s. Nil content
// sends nothing. It runs with a context that ends with the code's validity.
type SessionEndHandler func(ctx context.Context, e *SessionEnd) (Content, error)

// OnSessionEnd sets the closing message of sessions that end with a msg_code: when a human
// servicer ends the session (a session_status_change event of change type 3, which still reaches
// OnEvent afterwards) and when EndSession ends it. The message is sent once: its client msgid is
// derived from the event (or the code), and the code is single use, so a rerun of the event sends
// nothing more. A code older than 20 s is not used (a late event, such as one replayed after a
// long outage, is logged and skipped).
func (ch *Channel) OnSessionEnd(h SessionEndHandler) { ch.onEnd.Store(&h) }

// EndSession ends the session between a kf account and a customer (service_state/trans to state 4,
// §7) and, if OnSessionEnd is set, sends its closing message with the msg_code WeCom returns. WeCom
// allows ending only a session that a human servicer has (state 3); from the other states it
// answers 95016 (ErrInvalidStateTransition), which is returned. When the session ended but the
// closing message could not be sent, the error says so and wraps the cause.
func (ch *Channel) EndSession(ctx context.Context, openKfID, externalUserID string) error {
	code, err := ch.client.TransServiceState(ctx, TransServiceStateRequest{
		OpenKfID: openKfID, ExternalUserID: externalUserID, State: ServiceStateEnded,
	})
	if err != nil {
		return err
	}
	ch.states.put(customerKey(openKfID, externalUserID), ServiceStateEnded, ch.now())
	if code == "" {
		return nil
	}
	e := &SessionEnd{OpenKfID: openKfID, ExternalUserID: externalUserID}
	if err := ch.sendClosing(ctx, e, code, ch.now().Add(endCodeWindow), clientMsgID(openKfID, "end\x00"+code, 0)); err != nil {
		return fmt.Errorf("kf: session ended; closing message not sent: %w", err)
	}
	return nil
}

// sessionEnded answers a session_status_change event that ended the session with a msg_code.
func (ch *Channel) sessionEnded(ctx context.Context, m *Message) {
	ev := m.Event
	if ev == nil || ev.ChangeType != SessionEnded || ev.MsgCode == "" {
		return
	}
	deadline := m.SendTime.Add(endCodeWindow)
	if m.SendTime.IsZero() {
		deadline = ch.now().Add(endCodeWindow)
	}
	e := &SessionEnd{OpenKfID: m.OpenKfID, ExternalUserID: customerOf(m), ServicerUserID: ev.OldServicerUserID, Event: m}
	err := ch.sendClosing(ctx, e, ev.MsgCode, deadline, clientMsgID(m.OpenKfID, m.MsgID, 0))
	switch {
	case err == nil:
	case errors.Is(err, errCodeExpired):
		ch.log.Info("wxkf: session-end msg_code expired before it could be used", "open_kfid", m.OpenKfID, "msgid", m.MsgID)
	case errors.Is(err, ErrInvalidMsgToken):
		// Used already (a rerun of this event) or expired at WeCom.
		ch.log.Info("wxkf: session-end msg_code refused as used or expired", "open_kfid", m.OpenKfID, "msgid", m.MsgID)
	default:
		ch.log.Warn("wxkf: closing message not sent", "open_kfid", m.OpenKfID, "msgid", m.MsgID, "err", err)
	}
}

// errCodeExpired: the msg_code was past its validity before it could be used.
var errCodeExpired = errors.New("kf: msg_code expired")

// sendClosing asks the OnSessionEnd hook for the closing message and sends it with code before
// deadline. With no hook, or no content, it sends nothing.
func (ch *Channel) sendClosing(ctx context.Context, e *SessionEnd, code string, deadline time.Time, msgID string) error {
	h := ch.onEnd.Load()
	if h == nil || *h == nil {
		return nil
	}
	if !ch.now().Before(deadline) {
		return errCodeExpired
	}
	ctx, cancel := context.WithTimeout(ctx, deadline.Sub(ch.now()))
	defer cancel()
	c, err := callSessionEnd(ctx, *h, e)
	if err != nil || c == nil {
		if err != nil {
			ch.stats.handlerErrors.Add(1)
		}
		return err
	}
	if !ch.now().Before(deadline) {
		return errCodeExpired
	}
	_, err = ch.client.SendMsgOnEvent(ctx, SendMsgOnEventRequest{Code: code, MsgID: msgID, Content: c})
	if err == nil {
		ch.stats.replies.Add(1)
		return nil
	}
	attrs := []any{"open_kfid", e.OpenKfID}
	if e.Event != nil {
		attrs = append(attrs, "msgid", e.Event.MsgID)
	}
	if isDuplicateMsgID(err) {
		ch.noteDuplicate(err, attrs...)
		return nil
	}
	ch.noteErr("send_msg_on_event", err, attrs...)
	return err
}

func callSessionEnd(ctx context.Context, h SessionEndHandler, e *SessionEnd) (c Content, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("kf: session-end handler panicked: %v", v)
		}
	}()
	return h(ctx, e)
}
