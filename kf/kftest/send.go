package kftest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Byte limits of send_msg bodies (§6, doc 94677). The limits are WeCom's; the error codes the fake
// answers for them (in parentheses) are approximations except 95008.
const (
	MaxTextBytes        = 2048 // text.content, in bytes of UTF-8 (else 45002; empty is 44004)
	MaxClientMsgIDBytes = 32   // the optional client msgid, [0-9a-zA-Z_-] only (else 40058)
	MaxMenuItems        = 10   // msgmenu.list items (else 95008)
	MaxMenuHeadBytes    = 1024 // msgmenu.head_content (else 45002)
	MaxMenuTailBytes    = 1024 // msgmenu.tail_content (else 45002)
	MaxLinkTitleBytes   = 128  // link.title (else 45002)
	MaxLinkDescBytes    = 512  // link.desc (else 45002)
	MaxLinkURLBytes     = 2048 // link.url, http(s) only (else 45002 / 40058); the fake also applies it to menu view urls (approximation)
	MaxMiniTitleBytes   = 64   // miniprogram.title (else 45002)
)

// mediaRef is a media_id the request uses and the kind it must have been uploaded as.
type mediaRef struct {
	id, kind, field string
}

// checkSend validates a send_msg (onEvent false) or send_msg_on_event (onEvent true) body on its
// own, without server state (§6). It returns the request and the media it references, or the error
// WeCom would answer. It never panics, whatever the body.
func checkSend(body []byte, onEvent bool) (*SendRequest, []mediaRef, *apiError) {
	if e := checkJSONText(body); e != nil {
		return nil, nil, e
	}
	var req SendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, errf(CodeDataFormat, "data format error: "+jsonErrText(err))
	}
	if onEvent {
		if req.Code == "" {
			return nil, nil, errf(CodeInvalidParameter, "invalid parameter: code missing")
		}
	} else {
		if req.OpenKfID == "" {
			return nil, nil, errf(CodeMissingOpenKfID, "open_kfid missing")
		}
		if req.ToUser == "" {
			return nil, nil, errf(CodeInvalidExternalUserID, "invalid external_userid: touser missing")
		}
	}
	if e := checkClientMsgID(req.MsgID); e != nil {
		return nil, nil, e
	}
	if onEvent && req.MsgType != "text" && req.MsgType != "msgmenu" {
		return nil, nil, errf(CodeInvalidMsgType, "invalid message type: send_msg_on_event takes text or msgmenu")
	}
	var refs []mediaRef
	missing := func() *apiError {
		return errf(CodeInvalidParameter, "invalid parameter: "+req.MsgType+" body missing")
	}
	switch req.MsgType {
	case "text":
		if req.Text == nil || req.Text.Content == "" {
			return nil, nil, errf(CodeEmptyText, "empty content")
		}
		if n := len(req.Text.Content); n > MaxTextBytes {
			return nil, nil, errf(CodeContentTooLong, fmt.Sprintf("content size out of limit: %d > %d bytes", n, MaxTextBytes))
		}
	case "image", "voice", "video", "file":
		mb := map[string]*MediaBody{"image": req.Image, "voice": req.Voice, "video": req.Video, "file": req.File}[req.MsgType]
		if mb == nil {
			return nil, nil, missing()
		}
		if mb.MediaID == "" {
			return nil, nil, errf(CodeInvalidMediaID, "invalid media_id: empty")
		}
		refs = append(refs, mediaRef{mb.MediaID, req.MsgType, req.MsgType + ".media_id"})
	case "link":
		l := req.Link
		if l == nil {
			return nil, nil, missing()
		}
		if e := firstErr(
			required("link.title", l.Title), maxBytes("link.title", l.Title, MaxLinkTitleBytes),
			maxBytes("link.desc", l.Desc, MaxLinkDescBytes),
			required("link.url", l.URL), maxBytes("link.url", l.URL, MaxLinkURLBytes), httpURL("link.url", l.URL),
			required("link.thumb_media_id", l.ThumbMediaID),
		); e != nil {
			return nil, nil, e
		}
		refs = append(refs, mediaRef{l.ThumbMediaID, "image", "link.thumb_media_id"})
	case "miniprogram":
		m := req.MiniProgram
		if m == nil {
			return nil, nil, missing()
		}
		if e := firstErr(
			required("miniprogram.appid", m.AppID), maxBytes("miniprogram.title", m.Title, MaxMiniTitleBytes),
			required("miniprogram.pagepath", m.PagePath), required("miniprogram.thumb_media_id", m.ThumbMediaID),
		); e != nil {
			return nil, nil, e
		}
		refs = append(refs, mediaRef{m.ThumbMediaID, "image", "miniprogram.thumb_media_id"})
	case "msgmenu":
		if req.MsgMenu == nil {
			return nil, nil, missing()
		}
		if e := checkMenu(req.MsgMenu); e != nil {
			return nil, nil, e
		}
	case "location":
		l := req.Location
		if l == nil {
			return nil, nil, missing()
		}
		if !hasCoordinates(body) {
			return nil, nil, errf(CodeInvalidParameter, "invalid parameter: location.latitude and longitude required")
		}
		if l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
			return nil, nil, errf(CodeInvalidParameter, "invalid parameter: location out of range")
		}
	case "ca_link":
		if req.CALink == nil {
			return nil, nil, missing()
		}
		if e := firstErr(required("ca_link.link_url", req.CALink.LinkURL), httpURL("ca_link.link_url", req.CALink.LinkURL)); e != nil {
			return nil, nil, e
		}
	default:
		return nil, nil, errf(CodeInvalidMsgType, fmt.Sprintf("invalid message type %q", req.MsgType))
	}
	return &req, refs, nil
}

// hasCoordinates reports whether a location body gives both latitude and longitude (WeCom requires
// them; 0 is a valid value, so their presence is checked on the JSON).
func hasCoordinates(body []byte) bool {
	var w struct {
		Location struct {
			Latitude  json.RawMessage `json:"latitude"`
			Longitude json.RawMessage `json:"longitude"`
		} `json:"location"`
	}
	return json.Unmarshal(body, &w) == nil && w.Location.Latitude != nil && w.Location.Longitude != nil &&
		string(w.Location.Latitude) != "null" && string(w.Location.Longitude) != "null"
}

// checkClientMsgID: optional; ≤ 32 bytes of [0-9a-zA-Z_-] (§6).
func checkClientMsgID(id string) *apiError {
	if len(id) > MaxClientMsgIDBytes {
		return errf(CodeInvalidParameter, "invalid parameter: msgid longer than 32 bytes")
	}
	if !isIDChars(id) {
		return errf(CodeInvalidParameter, "invalid parameter: msgid may only contain [0-9a-zA-Z_-]")
	}
	return nil
}

// checkMenu enforces §6 msgmenu: head/tail ≤ 1024 bytes, ≤ 10 items (95008), item types
// click|view|miniprogram|text (95009). It also models rules no official page confirms, answering
// 40058 as an approximation: each item's body present with its fields non-empty (click content, view
// url and content, mini program appid, pagepath and content, text content), view urls http(s) and
// ≤ 2048 bytes, no_newline 0 or 1. The byte limits of item fields that only second sources give
// (click id 1–64, click content ≤ 128, …) are not enforced.
func checkMenu(m *MenuBody) *apiError {
	if e := firstErr(maxBytes("msgmenu.head_content", m.HeadContent, MaxMenuHeadBytes),
		maxBytes("msgmenu.tail_content", m.TailContent, MaxMenuTailBytes)); e != nil {
		return e
	}
	if len(m.List) > MaxMenuItems {
		return errf(CodeTooManyMenuItems, fmt.Sprintf("too many menu items: %d > %d", len(m.List), MaxMenuItems))
	}
	if m.HeadContent == "" && m.TailContent == "" && len(m.List) == 0 {
		return errf(CodeInvalidParameter, "invalid parameter: empty msgmenu")
	}
	for i, it := range m.List {
		field := fmt.Sprintf("msgmenu.list[%d]", i)
		var e *apiError
		switch it.Type {
		case "click":
			if it.Click == nil {
				return errf(CodeInvalidParameter, "invalid parameter: "+field+".click missing")
			}
			e = required(field+".click.content", it.Click.Content)
		case "view":
			if it.View == nil {
				return errf(CodeInvalidParameter, "invalid parameter: "+field+".view missing")
			}
			e = firstErr(required(field+".view.url", it.View.URL), maxBytes(field+".view.url", it.View.URL, MaxLinkURLBytes),
				httpURL(field+".view.url", it.View.URL), required(field+".view.content", it.View.Content))
		case "miniprogram":
			if it.MiniProgram == nil {
				return errf(CodeInvalidParameter, "invalid parameter: "+field+".miniprogram missing")
			}
			e = firstErr(required(field+".miniprogram.appid", it.MiniProgram.AppID),
				required(field+".miniprogram.pagepath", it.MiniProgram.PagePath),
				required(field+".miniprogram.content", it.MiniProgram.Content))
		case "text":
			if it.Text == nil {
				return errf(CodeInvalidParameter, "invalid parameter: "+field+".text missing")
			}
			e = required(field+".text.content", it.Text.Content)
			if e == nil && it.Text.NoNewline != 0 && it.Text.NoNewline != 1 {
				e = errf(CodeInvalidParameter, "invalid parameter: "+field+".text.no_newline must be 0 or 1")
			}
		default:
			return errf(CodeInvalidMenuType, fmt.Sprintf("invalid menu item type %q at %s", it.Type, field))
		}
		if e != nil {
			return e
		}
	}
	return nil
}

func required(field, v string) *apiError {
	if v == "" {
		return errf(CodeInvalidParameter, "invalid parameter: "+field+" missing")
	}
	return nil
}

func maxBytes(field, v string, n int) *apiError {
	if len(v) > n {
		return errf(CodeContentTooLong, fmt.Sprintf("content size out of limit: %s %d > %d bytes", field, len(v), n))
	}
	return nil
}

func httpURL(field, v string) *apiError {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errf(CodeInvalidParameter, "invalid parameter: "+field+" must be an http(s) URL")
	}
	return nil
}

func firstErr(es ...*apiError) *apiError {
	for _, e := range es {
		if e != nil {
			return e
		}
	}
	return nil
}

type sendResp struct {
	okBody
	MsgID string `json:"msgid"`
}

// handleSendMsg is POST /cgi-bin/kf/send_msg (§6, doc 94677). After checkSend, in this order:
// unknown open_kfid 95000; media unknown/expired/wrong kind 40007; client msgid already used on this
// account → DuplicateMsgIDCode (checked before the session rules so that retrying an accepted send
// always answers "duplicated", whatever the quota); session state 4 → 95013, 2 or 3 → 95018;
// customer never messaged → 95031; latest customer message > 48 h ago → 95002; 5 sends already
// since it → 95001. Accepted sends are recorded (Sent) and count against the quota.
func (s *Server) handleSendMsg(c *call) result {
	req, refs, e := checkSend(c.body, false)
	if e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accounts[req.OpenKfID]
	if acc == nil {
		return fail(CodeInvalidOpenKfID, "invalid open_kfid")
	}
	if e := s.checkMediaRefsLocked(refs, c.now); e != nil {
		return failErr(e)
	}
	if e := checkDuplicate(acc, req.MsgID); e != nil {
		return failErr(e)
	}
	ss := acc.sessions[req.ToUser]
	state := StateNew
	if ss != nil {
		state = ss.state
	}
	switch state {
	case StateNew, StateAssist:
	case StateEnded:
		return fail(CodeSessionEnded, "session already ended")
	default:
		return fail(CodeStateForbidsSend, fmt.Sprintf("session state %d does not allow sending", state))
	}
	switch {
	case ss == nil || ss.lastCustomer.IsZero():
		return fail(CodeNoConsultation, "customer has not consulted in the last 48 hours")
	case c.now.Sub(ss.lastCustomer) > ReplyWindow:
		return fail(CodeWindowExpired, "more than 48 hours since the customer's last message")
	case ss.sentSince >= QuotaPerWindow:
		return fail(CodeQuotaExceeded, "send message count exceeds limit (5 per customer message)")
	}
	ss.sentSince++
	id := s.acceptLocked(acc, req, c, false)
	return result{v: sendResp{okBody: okay(), MsgID: id}}
}

// handleSendMsgOnEvent is POST /cgi-bin/kf/send_msg_on_event (§6, doc 95122): the code must be one
// this fake issued (welcome_code, trans msg_code), unused and unexpired (else 95007); it is used up by
// the accepted send. msgtype text|msgmenu only (40008). Does not count against the 5-message quota.
func (s *Server) handleSendMsgOnEvent(c *call) result {
	req, _, e := checkSend(c.body, true)
	if e != nil {
		return failErr(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ec := s.codes[req.Code]
	switch {
	case ec == nil:
		return fail(CodeInvalidMsgToken, "invalid code")
	case ec.used:
		return fail(CodeInvalidMsgToken, "invalid code: already used")
	case !c.now.Before(ec.expires):
		return fail(CodeInvalidMsgToken, "invalid code: expired")
	}
	acc := s.accounts[ec.openKfID]
	if acc == nil {
		return fail(CodeInvalidOpenKfID, "invalid open_kfid: account deleted")
	}
	if e := checkDuplicate(acc, req.MsgID); e != nil {
		return failErr(e)
	}
	ec.used = true
	if ec.kind == codeWelcome {
		acc.session(ec.user).lastWelcome = c.now
	}
	req.OpenKfID, req.ToUser = ec.openKfID, ec.user
	id := s.acceptLocked(acc, req, c, true)
	return result{v: sendResp{okBody: okay(), MsgID: id}}
}

func checkDuplicate(acc *account, clientID string) *apiError {
	if clientID == "" {
		return nil
	}
	if _, dup := acc.clientIDs[clientID]; dup {
		return errf(DuplicateMsgIDCode, "invalid parameter: msgid duplicated")
	}
	return nil
}

func (s *Server) checkMediaRefsLocked(refs []mediaRef, now time.Time) *apiError {
	for _, r := range refs {
		m := s.media[r.id]
		switch {
		case m == nil:
			return errf(CodeInvalidMediaID, "invalid media_id: "+r.field)
		case now.Sub(m.created) > MediaTTL:
			return errf(CodeInvalidMediaID, "invalid media_id: "+r.field+" expired")
		case m.kind != r.kind:
			return errf(CodeInvalidMediaID, fmt.Sprintf("invalid media_id: %s is %s, not %s", r.field, m.kind, r.kind))
		}
	}
	return nil
}

// acceptLocked records an accepted send and returns its msgid (the client msgid when given).
func (s *Server) acceptLocked(acc *account, req *SendRequest, c *call, onEvent bool) string {
	id := req.MsgID
	if id == "" {
		id = s.randString(44, idChars)
	} else {
		acc.clientIDs[id] = struct{}{}
	}
	sent := Sent{
		OpenKfID:    req.OpenKfID,
		ToUser:      req.ToUser,
		MsgID:       id,
		ClientMsgID: req.MsgID,
		MsgType:     req.MsgType,
		Body:        append(json.RawMessage(nil), c.body...),
		OnEvent:     onEvent,
		At:          c.now,
	}
	if onEvent {
		sent.Code = req.Code
	}
	switch req.MsgType {
	case "text":
		sent.Text = req.Text.Content
	case "image":
		sent.MediaID = req.Image.MediaID
	case "voice":
		sent.MediaID = req.Voice.MediaID
	case "video":
		sent.MediaID = req.Video.MediaID
	case "file":
		sent.MediaID = req.File.MediaID
	}
	s.sent = append(s.sent, sent)
	close(s.sentSignal)
	s.sentSignal = make(chan struct{})
	return id
}
