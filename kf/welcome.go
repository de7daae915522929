package kf

import (
	"context"
	"fmt"
	"time"
)

// welcomeWindow is how long a welcome_code is valid (§5).
const welcomeWindow = 20 * time.Second

// welcome answers an enter_session event that carries a welcome_code, with send_msg_on_event
// inside the code's 20 s window (§5, §6). Its client msgid is derived from the event, so a rerun
// of the event cannot welcome twice.
func (ch *Channel) welcome(ctx context.Context, m *Message) {
	h := ch.onWelcome.Load()
	if h == nil || *h == nil || m.Event == nil || m.Event.WelcomeCode == "" {
		return
	}
	deadline := m.SendTime.Add(welcomeWindow)
	if m.SendTime.IsZero() {
		deadline = ch.now().Add(welcomeWindow)
	}
	if !ch.now().Before(deadline) {
		ch.log.Info("wxkf: welcome code expired before it could be used", "open_kfid", m.OpenKfID, "msgid", m.MsgID)
		ch.stats.welcomeExpired.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, deadline.Sub(ch.now()))
	defer cancel()
	c, err := ch.callWelcome(ctx, *h, m)
	if err != nil || c == nil {
		if err != nil {
			// The welcome code is single use and short-lived: this welcome is lost.
			ch.log.Error("wxkf: welcome handler failed; no welcome sent", "open_kfid", m.OpenKfID, "msgid", m.MsgID, "err", err)
			ch.stats.handlerErrors.Add(1)
		}
		return
	}
	start := time.Now()
	_, err = ch.client.SendMsgOnEvent(ctx, SendMsgOnEventRequest{
		Code: m.Event.WelcomeCode, MsgID: clientMsgID(m.OpenKfID, m.MsgID, 0), Content: c,
	})
	ch.noteSend(ctx, m.OpenKfID, c.MsgType(), start, err)
	switch {
	case err == nil:
		ch.stats.replies.Add(1)
	case isDuplicateMsgID(err):
		ch.noteDuplicate(err, "open_kfid", m.OpenKfID, "msgid", m.MsgID)
	default:
		ch.noteCode(err)
		ch.log.Error("wxkf: welcome not sent (its code is single use)",
			errAttrs([]any{"open_kfid", m.OpenKfID, "msgid", m.MsgID}, err)...)
	}
}

func (ch *Channel) callWelcome(ctx context.Context, h WelcomeHandler, m *Message) (c Content, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("kf: welcome handler panicked: %v", v)
		}
	}()
	return h(ctx, m)
}
