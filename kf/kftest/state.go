package kftest

import "fmt"

type stateGetReq struct {
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
}

type stateGetResp struct {
	okBody
	ServiceState   int    `json:"service_state"`
	ServicerUserID string `json:"servicer_userid"`
}

// handleStateGet is POST /cgi-bin/kf/service_state/get (§7, doc 94698).
func (s *Server) handleStateGet(c *call) result {
	var req stateGetReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	if req.ExternalUserID == "" {
		return fail(CodeInvalidExternalUserID, "invalid external_userid")
	}
	resp := stateGetResp{okBody: okay()}
	if ss := acc.sessions[req.ExternalUserID]; ss != nil {
		resp.ServiceState, resp.ServicerUserID = ss.state, ss.servicer
	}
	return result{v: resp}
}

type stateTransReq struct {
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	ServiceState   *int   `json:"service_state"`
	ServicerUserID string `json:"servicer_userid"`
}

type stateTransResp struct {
	okBody
	MsgCode string `json:"msg_code,omitempty"`
}

// allowedTransition is the table of §7 (doc 94698): 0→1/2/3, 1→2/3, 2→3, 3→3 (transfer), 3→4.
// The fake follows it literally: every other pair, including 0/1/2→4 and staying in the same
// state other than 3, is 95016.
func allowedTransition(from, to int) bool {
	switch from {
	case StateNew:
		return to == StateAssist || to == StateQueued || to == StateServicer
	case StateAssist:
		return to == StateQueued || to == StateServicer
	case StateQueued:
		return to == StateServicer
	case StateServicer:
		return to == StateServicer || to == StateEnded
	}
	return false
}

// handleStateTrans is POST /cgi-bin/kf/service_state/trans (§7). Target state 3 needs a
// servicer_userid who is a servicer of the account (95014 if not, or not activated) and receiving
// (95019). msg_code (for send_msg_on_event) is returned on the session's first change to 2 or 3
// (valid 48 h) and on the change to 4 (valid 20 s), as doc 94698 describes.
func (s *Server) handleStateTrans(c *call) result {
	var req stateTransReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, e := s.accountForLocked(req.OpenKfID)
	if e != nil {
		return failErr(e)
	}
	if req.ExternalUserID == "" {
		return fail(CodeInvalidExternalUserID, "invalid external_userid")
	}
	if req.ServiceState == nil || *req.ServiceState < StateNew || *req.ServiceState > StateEnded {
		return fail(CodeInvalidParameter, "invalid parameter: service_state must be 0..4")
	}
	to := *req.ServiceState
	ss := acc.session(req.ExternalUserID)
	from := ss.state
	if !allowedTransition(from, to) {
		return fail(CodeBadTransition, fmt.Sprintf("state transition %d→%d not allowed", from, to))
	}
	if to == StateServicer {
		if req.ServicerUserID == "" {
			return fail(CodeInvalidParameter, "invalid parameter: servicer_userid required for state 3")
		}
		sv := acc.servicers[req.ServicerUserID]
		switch {
		case sv == nil || sv.status == ServicerNotActivated:
			return fail(CodeNotServicer, "servicer_userid is not an activated servicer of this account")
		case sv.status != ServicerReceiving:
			return fail(CodeServicerNotReceiving, "servicer is not receiving")
		}
	}
	resp := stateTransResp{okBody: okay()}
	ss.state = to
	switch to {
	case StateServicer:
		ss.servicer = req.ServicerUserID
		if !ss.codeServicer {
			ss.codeServicer = true
			resp.MsgCode = s.newCodeLocked(codeTaken, acc.openKfID, req.ExternalUserID, s.cfg.queueTTL)
		}
	case StateQueued:
		ss.servicer = ""
		if !ss.codeQueued {
			ss.codeQueued = true
			resp.MsgCode = s.newCodeLocked(codeQueue, acc.openKfID, req.ExternalUserID, s.cfg.queueTTL)
		}
	case StateEnded:
		ss.servicer = ""
		resp.MsgCode = s.newCodeLocked(codeEnd, acc.openKfID, req.ExternalUserID, s.cfg.welcomeTTL)
	default:
		ss.servicer = ""
	}
	return result{v: resp}
}

// accountForLocked resolves a request's open_kfid: empty → 95004, unknown → 95000.
func (s *Server) accountForLocked(openKfID string) (*account, *apiError) {
	if openKfID == "" {
		return nil, errf(CodeMissingOpenKfID, "open_kfid missing")
	}
	acc := s.accounts[openKfID]
	if acc == nil {
		return nil, errf(CodeInvalidOpenKfID, "invalid open_kfid")
	}
	return acc, nil
}
