package kf

import (
	"context"
	"encoding/json"
)

// SendMsgRequest is a message to a customer (cgi-bin/kf/send_msg, §6, doc 94677).
type SendMsgRequest struct {
	// ToUser is the customer's external_userid.
	ToUser string
	// OpenKfID is the kf account that sends.
	OpenKfID string
	// MsgID is an optional client message id: ≤ 32 bytes of [0-9a-zA-Z_-], unique within the kf
	// account. WeCom rejects a second send with the same id, which makes it an idempotency key:
	// only a send that carries one is retried on -1, 45033 and network errors.
	MsgID string
	// Content is the body: Text, Image, Voice, Video, File, Link, MiniProgram, Menu, Location or CALink.
	Content Content
}

type sendHeader struct {
	ToUser   string `json:"touser"`
	OpenKfID string `json:"open_kfid"`
	MsgID    string `json:"msgid,omitempty"`
}

// MarshalJSON encodes the request as send_msg expects: {"touser", "open_kfid", "msgid"?,
// "msgtype": T, T: body}. It validates like SendMsg.
func (r SendMsgRequest) MarshalJSON() ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	t, p, err := contentPayload(r.Content)
	if err != nil {
		return nil, err
	}
	return encodeWithBody(sendHeader{r.ToUser, r.OpenKfID, r.MsgID}, t, p)
}

func (r *SendMsgRequest) validate() error {
	switch {
	case r.ToUser == "":
		return invalidf("send_msg: touser is required")
	case r.OpenKfID == "":
		return invalidf("send_msg: open_kfid is required")
	}
	return checkMsgID(r.MsgID)
}

// checkMsgID enforces §6: msgid ≤ 32 bytes of [0-9a-zA-Z_-].
func checkMsgID(id string) error {
	if len(id) > MaxMsgIDBytes {
		return invalidf("msgid is %d bytes, max %d", len(id), MaxMsgIDBytes)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return invalidf("msgid %q has %q; only [0-9a-zA-Z_-] is allowed", id, c)
		}
	}
	return nil
}

// encodeWithBody encodes header (a struct) with "msgtype": t and t: payload appended.
func encodeWithBody(header any, t MsgType, payload any) ([]byte, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	typ, _ := json.Marshal(t)
	h, _ = spliceKey(h, "msgtype", typ)
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return spliceKey(h, string(t), body)
}

type sendMsgReply struct {
	apiStatus
	MsgID string `json:"msgid"`
}

// SendMsg sends a message to a customer (cgi-bin/kf/send_msg, §6) and returns WeCom's msgid (the
// client msgid when one was given). Success means accepted, not delivered: watch msg_send_fail
// events. WeCom allows it only while the session is in state 0 or 1 (else 95018, ErrStateForbidsSend),
// within 48 h of the customer's last message (95002) and at most 5 messages per customer message
// (95001, ErrQuotaExceeded).
//
// Invalid content (text over 2048 bytes or not UTF-8, a bad msgid, more than 10 menu items, ...)
// fails with ErrInvalidArgument before any I/O. The send is retried on busy and network errors only
// when MsgID is set (see WithRetry).
func (c *Client) SendMsg(ctx context.Context, req SendMsgRequest) (string, error) {
	body, err := req.MarshalJSON()
	if err != nil {
		return "", err
	}
	var out sendMsgReply
	err = c.call(ctx, &request{method: methodPost, path: pathSendMsg, body: json.RawMessage(body), retry: sendRetry(req.MsgID)}, &out)
	if err != nil {
		return "", err
	}
	return out.MsgID, nil
}

func sendRetry(msgID string) retryClass {
	if msgID != "" {
		return retryIdempotent
	}
	return retryUnsafe
}

// SendMsgOnEventRequest is a message sent with an event code (cgi-bin/kf/send_msg_on_event, §6):
// the welcome_code of enter_session (valid 20 s) or a msg_code of session_status_change or
// service_state/trans. Codes are single use.
type SendMsgOnEventRequest struct {
	Code string
	// MsgID is an optional client msgid, as in SendMsgRequest.
	MsgID string
	// Content is Text or Menu (the only msgtypes WeCom accepts here).
	Content Content
}

type sendOnEventHeader struct {
	Code  string `json:"code"`
	MsgID string `json:"msgid,omitempty"`
}

// MarshalJSON encodes the request as send_msg_on_event expects; it validates like SendMsgOnEvent.
func (r SendMsgOnEventRequest) MarshalJSON() ([]byte, error) {
	if r.Code == "" {
		return nil, invalidf("send_msg_on_event: code is required")
	}
	if err := checkMsgID(r.MsgID); err != nil {
		return nil, err
	}
	t, p, err := contentPayload(r.Content)
	if err != nil {
		return nil, err
	}
	if t != MsgTypeText && t != MsgTypeMsgMenu {
		return nil, invalidf("send_msg_on_event: msgtype %q not allowed, only text and msgmenu", t)
	}
	return encodeWithBody(sendOnEventHeader{r.Code, r.MsgID}, t, p)
}

// SendMsgOnEvent sends a text or menu with an event code (§6) and returns WeCom's msgid. It is
// retried on busy and network errors only when MsgID is set.
func (c *Client) SendMsgOnEvent(ctx context.Context, req SendMsgOnEventRequest) (string, error) {
	body, err := req.MarshalJSON()
	if err != nil {
		return "", err
	}
	var out sendMsgReply
	err = c.call(ctx, &request{method: methodPost, path: pathSendMsgOnEvent, body: json.RawMessage(body), retry: sendRetry(req.MsgID)}, &out)
	if err != nil {
		return "", err
	}
	return out.MsgID, nil
}
