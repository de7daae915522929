package kftest

import "fmt"

// EndSessionByServicer ends a session as its human servicer does in the WeCom client: the session
// (state 3) moves to state 4, and a session_status_change event (change_type 3, §5) is added with
// old_servicer_userid and a msg_code that is valid 20 s for one send_msg_on_event (§6). It returns
// the msg_code. If a callback URL is set (WithCallbackURL), a kf_msg_or_event delivery follows
// asynchronously. It panics unless the session is in state 3 (a programming error in a test).
func (s *Server) EndSessionByServicer(openKfID, user string) (msgCode string) {
	s.mu.Lock()
	acc := s.mustAccountLocked(openKfID)
	ss := acc.sessions[user]
	if ss == nil || ss.state != StateServicer {
		s.mu.Unlock()
		panic(fmt.Sprintf("kftest: EndSessionByServicer: session of %q is not with a servicer", user))
	}
	servicer := ss.servicer
	ss.state, ss.servicer = StateEnded, ""
	code := s.newCodeLocked(codeEnd, openKfID, user, s.cfg.welcomeTTL)
	ev := map[string]any{
		"event_type":          "session_status_change",
		"open_kfid":           openKfID,
		"external_userid":     user,
		"change_type":         3,
		"old_servicer_userid": servicer,
		"msg_code":            code,
	}
	_, _, url := s.addMessageLocked(Message{OpenKfID: openKfID, ExternalUserID: user, Origin: OriginSystem,
		MsgType: "event", Body: ev})
	s.mu.Unlock()
	if url != "" {
		s.deliverAsync(url, openKfID)
	}
	return code
}
