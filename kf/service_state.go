package kf

import (
	"context"
	"strconv"
)

// ServiceStateValue is the state of a customer's session (§7, doc 94698).
type ServiceStateValue int

// Session states.
const (
	// ServiceStateNew: not handled yet (未处理).
	ServiceStateNew ServiceStateValue = 0
	// ServiceStateAssistant: handled by the smart assistant, i.e. the API / this bot (由智能助手接待).
	ServiceStateAssistant ServiceStateValue = 1
	// ServiceStateQueued: waiting in the queue for a human servicer (待接入池排队中).
	ServiceStateQueued ServiceStateValue = 2
	// ServiceStateServicer: handled by a human servicer (由人工接待).
	ServiceStateServicer ServiceStateValue = 3
	// ServiceStateEnded: ended or not started (已结束/未开始).
	ServiceStateEnded ServiceStateValue = 4
)

// String returns "new", "assistant", "queued", "servicer" or "ended".
func (s ServiceStateValue) String() string {
	switch s {
	case ServiceStateNew:
		return "new"
	case ServiceStateAssistant:
		return "assistant"
	case ServiceStateQueued:
		return "queued"
	case ServiceStateServicer:
		return "servicer"
	case ServiceStateEnded:
		return "ended"
	}
	return "ServiceStateValue(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the five documented states.
func (s ServiceStateValue) Valid() bool { return s >= ServiceStateNew && s <= ServiceStateEnded }

// CanSend reports whether the API may send_msg in this state: only 0 and 1 (§6); otherwise WeCom
// answers 95018 (ErrStateForbidsSend).
func (s ServiceStateValue) CanSend() bool {
	return s == ServiceStateNew || s == ServiceStateAssistant
}

// ServiceState is a session's state and, in state 3, its servicer.
type ServiceState struct {
	State          ServiceStateValue `json:"service_state"`
	ServicerUserID string            `json:"servicer_userid,omitempty"`
}

type serviceStateReply struct {
	apiStatus
	ServiceState
}

type sessionRef struct {
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
}

func (r sessionRef) validate(api string) error {
	switch {
	case r.OpenKfID == "":
		return invalidf("%s: open_kfid is required", api)
	case r.ExternalUserID == "":
		return invalidf("%s: external_userid is required", api)
	}
	return nil
}

// GetServiceState returns the state of the session between a kf account and a customer
// (cgi-bin/kf/service_state/get, §7).
func (c *Client) GetServiceState(ctx context.Context, openKfID, externalUserID string) (*ServiceState, error) {
	ref := sessionRef{openKfID, externalUserID}
	if err := ref.validate("service_state/get"); err != nil {
		return nil, err
	}
	var out serviceStateReply
	if err := c.call(ctx, &request{method: methodPost, path: pathServiceStateGet, body: ref, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return &out.ServiceState, nil
}

// TransServiceStateRequest moves a session to another state (cgi-bin/kf/service_state/trans, §7).
type TransServiceStateRequest struct {
	OpenKfID       string            `json:"open_kfid"`
	ExternalUserID string            `json:"external_userid"`
	State          ServiceStateValue `json:"service_state"`
	// ServicerUserID is required for state 3; the servicer must be receiving (else 95019) and
	// activated (else 95014).
	ServicerUserID string `json:"servicer_userid,omitempty"`
}

type transReply struct {
	apiStatus
	MsgCode string `json:"msg_code"`
}

// TransServiceState changes the state of a session (§7) and returns the msg_code WeCom gives for
// send_msg_on_event (empty when none). Transitions WeCom does not allow fail with 95016
// (ErrInvalidStateTransition). Not retried on busy errors: a state change is not idempotent.
func (c *Client) TransServiceState(ctx context.Context, req TransServiceStateRequest) (string, error) {
	if err := (sessionRef{req.OpenKfID, req.ExternalUserID}).validate("service_state/trans"); err != nil {
		return "", err
	}
	if !req.State.Valid() {
		return "", invalidf("service_state/trans: state %d not in 0..4", int(req.State))
	}
	if req.State == ServiceStateServicer && req.ServicerUserID == "" {
		return "", invalidf("service_state/trans: servicer_userid is required for state 3")
	}
	var out transReply
	if err := c.call(ctx, &request{method: methodPost, path: pathServiceStateTrans, body: &req, retry: retryUnsafe}, &out); err != nil {
		return "", err
	}
	return out.MsgCode, nil
}
