package kftest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"time"
)

// Message is a message (or event) as WeCom would store it for sync_msg (§4). Zero fields take the
// defaults documented on each.
type Message struct {
	// MsgID is the sync_msg msgid; generated (44 characters, longer than 32 on purpose) if empty.
	MsgID string
	// OpenKfID is the kf account; the default account if empty.
	OpenKfID string
	// ExternalUserID is the WeChat customer.
	ExternalUserID string
	// Origin is 3 (customer, the default), 4 (system event) or 5 (human servicer).
	Origin int
	// SendTime defaults to the clock's now.
	SendTime time.Time
	// ServicerUserID is set for origin 5.
	ServicerUserID string
	// MsgType is the msgtype ("text", "image", "event", …).
	MsgType string
	// Body is marshalled under the msgtype key: a struct, a map or a json.RawMessage.
	Body any
}

// AddMessage stores m so that sync_msg returns it, and returns its msgid. It panics if Body cannot be
// marshalled or OpenKfID is unknown (programming errors in a test).
//
// A customer message (origin 3) makes the customer known and, when its send_time is not older than
// the customer's latest message, restarts the 48 h window and resets the quota to 5 (§6). A customer
// message in a session that is ended (state 4) starts a new session in state 0; a first message
// finds the session in state 0 already. Other states (1, 2, 3) are kept.
// If a callback URL is set (WithCallbackURL), a kf_msg_or_event delivery follows asynchronously.
func (s *Server) AddMessage(m Message) string {
	s.mu.Lock()
	id, openKfID, url := s.addMessageLocked(m)
	s.mu.Unlock()
	if url != "" {
		s.deliverAsync(url, openKfID)
	}
	return id
}

func (s *Server) addMessageLocked(m Message) (msgID, openKfID, cbURL string) {
	if m.OpenKfID == "" {
		m.OpenKfID = s.defaultKf
	}
	acc := s.accounts[m.OpenKfID]
	if acc == nil {
		panic(fmt.Sprintf("kftest: AddMessage: unknown open_kfid %q", m.OpenKfID))
	}
	if m.MsgID == "" {
		m.MsgID = s.randString(44, idChars)
	}
	if m.Origin == 0 {
		m.Origin = OriginCustomer
	}
	if m.SendTime.IsZero() {
		m.SendTime = s.now()
	}
	if m.MsgType == "" {
		panic("kftest: AddMessage: empty MsgType")
	}
	var body json.RawMessage
	switch b := m.Body.(type) {
	case nil:
		body = json.RawMessage("{}")
	case json.RawMessage:
		body = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			panic("kftest: AddMessage: body: " + err.Error())
		}
		body = raw
	}
	item := map[string]any{
		"msgid":     m.MsgID,
		"send_time": m.SendTime.Unix(),
		"origin":    m.Origin,
		"msgtype":   m.MsgType,
		m.MsgType:   body,
	}
	// Events carry open_kfid / external_userid inside the event body only (as in WeCom's examples);
	// a client must read them from there.
	if m.MsgType != "event" {
		item["open_kfid"] = m.OpenKfID
		item["external_userid"] = m.ExternalUserID
	}
	if m.ServicerUserID != "" {
		item["servicer_userid"] = m.ServicerUserID
	}
	raw, err := json.Marshal(item)
	if err != nil {
		panic("kftest: AddMessage: " + err.Error())
	}
	acc.msgs = append(acc.msgs, storedMsg{msgID: m.MsgID, sendTime: m.SendTime, origin: m.Origin,
		user: m.ExternalUserID, servicer: m.ServicerUserID, raw: raw})
	if m.ExternalUserID != "" {
		s.customerLocked(m.ExternalUserID)
	}
	if m.Origin == OriginCustomer && m.ExternalUserID != "" {
		ss := acc.session(m.ExternalUserID)
		if ss.state == StateEnded {
			*ss = session{lastWelcome: ss.lastWelcome, lastCustomer: ss.lastCustomer}
		}
		if !m.SendTime.Before(ss.lastCustomer) {
			ss.lastCustomer = m.SendTime
			ss.sentSince = 0
		}
	}
	return m.MsgID, m.OpenKfID, s.cbURL
}

// AddText adds a customer text message on the default account and returns its msgid.
func (s *Server) AddText(user, content string) string {
	return s.AddMessage(Message{ExternalUserID: user, MsgType: "text", Body: map[string]string{"content": content}})
}

// AddMenuClick adds the text message WeCom delivers when the customer clicks a msgmenu click item:
// text.content is the item's content and text.menu_id its id (§4).
func (s *Server) AddMenuClick(user, menuID, content string) string {
	return s.AddMessage(Message{ExternalUserID: user, MsgType: "text",
		Body: map[string]string{"content": content, "menu_id": menuID}})
}

// AddServicerText adds a text a human servicer sent from the WeCom client (origin 5).
func (s *Server) AddServicerText(user, servicerUserID, content string) string {
	return s.AddMessage(Message{ExternalUserID: user, Origin: OriginServicer, ServicerUserID: servicerUserID,
		MsgType: "text", Body: map[string]string{"content": content}})
}

func (s *Server) addMediaMessage(user, kind, filename string, data []byte) string {
	id := s.PutMedia(kind, filename, data)
	return s.AddMessage(Message{ExternalUserID: user, MsgType: kind, Body: map[string]string{"media_id": id}})
}

// AddImage stores data as an image (served by media/get) and adds a customer image message.
func (s *Server) AddImage(user string, data []byte) string {
	name := "image.jpg"
	if http.DetectContentType(data) == "image/png" {
		name = "image.png"
	}
	return s.addMediaMessage(user, "image", name, data)
}

// AddVoice stores data as voice (AMR, as sync_msg delivers by default) and adds a customer voice message.
func (s *Server) AddVoice(user string, amr []byte) string {
	return s.addMediaMessage(user, "voice", "voice.amr", amr)
}

// AddVideo stores data as video and adds a customer video message.
func (s *Server) AddVideo(user string, data []byte) string {
	return s.addMediaMessage(user, "video", "video.mp4", data)
}

// AddFile stores data as a file named filename and adds a customer file message.
func (s *Server) AddFile(user, filename string, data []byte) string {
	return s.addMediaMessage(user, "file", filename, data)
}

// AddLocation adds a customer location message (§4).
func (s *Server) AddLocation(user string, latitude, longitude float64, name, address string) string {
	return s.AddMessage(Message{ExternalUserID: user, MsgType: "location", Body: map[string]any{
		"latitude": latitude, "longitude": longitude, "name": name, "address": address}})
}

// AddEvent adds a system event (origin 4, msgtype "event") whose body is fields plus event_type (§5).
// fields["open_kfid"] defaults to the default account; fields["external_userid"], when a string,
// makes the customer known. Returns the msgid.
func (s *Server) AddEvent(eventType string, fields map[string]any) string {
	body := maps.Clone(fields)
	if body == nil {
		body = map[string]any{}
	}
	body["event_type"] = eventType
	kf, _ := body["open_kfid"].(string)
	if kf == "" {
		kf = s.defaultKf
		body["open_kfid"] = kf
	}
	user, _ := body["external_userid"].(string)
	return s.AddMessage(Message{OpenKfID: kf, ExternalUserID: user, Origin: OriginSystem, MsgType: "event", Body: body})
}

// EnterSession adds the enter_session event of user opening the default account's chat (§5) and
// returns its welcome_code, or "" when WeCom would give none.
func (s *Server) EnterSession(user, scene, sceneParam string) (welcomeCode string) {
	return s.EnterSessionOn(s.defaultKf, user, scene, sceneParam)
}

// EnterSessionOn is EnterSession on account openKfID. A welcome_code is given only when the customer
// got no welcome message in the last 48 h and has not messaged in the last 48 h (§5); it is valid
// 20 s and for one send_msg_on_event.
func (s *Server) EnterSessionOn(openKfID, user, scene, sceneParam string) (welcomeCode string) {
	s.mu.Lock()
	acc := s.accounts[openKfID]
	if acc == nil {
		s.mu.Unlock()
		panic(fmt.Sprintf("kftest: EnterSession: unknown open_kfid %q", openKfID))
	}
	now := s.now()
	ss := acc.session(user)
	noWelcome := ss.lastWelcome.IsZero() || now.Sub(ss.lastWelcome) > ReplyWindow
	noMessage := ss.lastCustomer.IsZero() || now.Sub(ss.lastCustomer) > ReplyWindow
	if noWelcome && noMessage {
		welcomeCode = s.newCodeLocked(codeWelcome, openKfID, user, s.cfg.welcomeTTL)
	}
	c := s.customerLocked(user)
	c.scene, c.sceneParam = scene, sceneParam
	ev := map[string]any{
		"event_type":      "enter_session",
		"open_kfid":       openKfID,
		"external_userid": user,
		"scene":           scene,
		"scene_param":     sceneParam,
	}
	if welcomeCode != "" {
		ev["welcome_code"] = welcomeCode
	}
	_, _, url := s.addMessageLocked(Message{OpenKfID: openKfID, ExternalUserID: user, Origin: OriginSystem,
		SendTime: now, MsgType: "event", Body: ev})
	s.mu.Unlock()
	if url != "" {
		s.deliverAsync(url, openKfID)
	}
	return welcomeCode
}

// newCodeLocked issues a single-use send_msg_on_event code.
func (s *Server) newCodeLocked(kind codeKind, openKfID, user string, ttl time.Duration) string {
	code := s.randString(43, idChars)
	s.codes[code] = &eventCode{kind: kind, openKfID: openKfID, user: user, expires: s.now().Add(ttl)}
	return code
}

// PutMedia stores data as media of kind (image, voice, video, file) without checking it, as if a
// customer had sent it, and returns its media_id (valid 3 days).
func (s *Server) PutMedia(kind, filename string, data []byte) (mediaID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putMediaLocked(kind, filename, "", data)
}

func (s *Server) putMediaLocked(kind, filename, contentType string, data []byte) string {
	id := "3" + s.randString(63, idChars)
	if contentType == "" {
		contentType = mediaContentType(kind, data)
	}
	s.media[id] = &mediaItem{kind: kind, filename: filename, contentType: contentType,
		data: append([]byte(nil), data...), created: s.now()}
	return id
}

// Media returns a stored media's bytes, Content-Type and filename; ok is false for an unknown id.
// Expired media is still returned here (media/get refuses it).
func (s *Server) Media(mediaID string) (data []byte, contentType, filename string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.media[mediaID]
	if m == nil {
		return nil, "", "", false
	}
	return append([]byte(nil), m.data...), m.contentType, m.filename, true
}

// MediaKind returns the kind (image, voice, video, file) a media_id was stored as.
func (s *Server) MediaKind(mediaID string) (kind string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.media[mediaID]
	if m == nil {
		return "", false
	}
	return m.kind, true
}

// SetServiceState sets a session's state and servicer directly, without the transition rules.
func (s *Server) SetServiceState(openKfID, user string, state int, servicerUserID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccountLocked(openKfID)
	ss := acc.session(user)
	ss.state, ss.servicer = state, servicerUserID
}

// ServiceState returns a session's state and servicer (0, "" for a customer never seen).
func (s *Server) ServiceState(openKfID, user string) (state int, servicerUserID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccountLocked(openKfID)
	if ss := acc.sessions[user]; ss != nil {
		return ss.state, ss.servicer
	}
	return StateNew, ""
}

// QuotaLeft is how many more send_msg the customer can receive now: 5 minus the sends since their
// latest message, or 0 when they never messaged or that was more than 48 h ago (§6).
func (s *Server) QuotaLeft(openKfID, user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccountLocked(openKfID)
	return acc.sessions[user].quotaLeft(s.now())
}

// AddServicer makes userid a servicer of the default account with status ServicerReceiving,
// ServicerStopped or ServicerNotActivated. Adding again updates the status.
func (s *Server) AddServicer(userid string, status int) {
	s.AddServicerTo(s.defaultKf, userid, status)
}

// AddServicerTo is AddServicer on account openKfID.
func (s *Server) AddServicerTo(openKfID, userid string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.mustAccountLocked(openKfID)
	if sv := acc.servicers[userid]; sv != nil {
		sv.status = status
		return
	}
	acc.servicers[userid] = &servicer{userid: userid, status: status}
	acc.svcOrder = append(acc.svcOrder, userid)
}

func (s *Server) mustAccountLocked(openKfID string) *account {
	acc := s.accounts[openKfID]
	if acc == nil {
		panic(fmt.Sprintf("kftest: unknown open_kfid %q", openKfID))
	}
	return acc
}

// Sent returns every accepted send_msg / send_msg_on_event, in acceptance order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// SentTo returns the accepted sends to one customer of one account, in order.
func (s *Server) SentTo(openKfID, externalUserID string) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentToLocked(openKfID, externalUserID)
}

func (s *Server) sentToLocked(openKfID, user string) []Sent {
	var out []Sent
	for _, m := range s.sent {
		if m.OpenKfID == openKfID && m.ToUser == user {
			out = append(out, m)
		}
	}
	return out
}

// Rejected returns every call answered with a non-zero errcode, in order.
func (s *Server) Rejected() []Rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Rejection(nil), s.rejected...)
}

// WaitSent blocks until at least n sends were accepted in total, then returns them all; or returns
// ctx's error with what was sent so far.
func (s *Server) WaitSent(ctx context.Context, n int) ([]Sent, error) {
	return s.waitSent(ctx, n, func() []Sent { return append([]Sent(nil), s.sent...) })
}

// WaitSentTo blocks until at least n sends to one customer were accepted, then returns them.
func (s *Server) WaitSentTo(ctx context.Context, openKfID, externalUserID string, n int) ([]Sent, error) {
	return s.waitSent(ctx, n, func() []Sent { return s.sentToLocked(openKfID, externalUserID) })
}

func (s *Server) waitSent(ctx context.Context, n int, get func() []Sent) ([]Sent, error) {
	for {
		s.mu.Lock()
		got := get()
		sig := s.sentSignal
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return got, ctx.Err()
		case <-s.closing:
			return got, errClosed
		}
	}
}

// AddRawItem stores item, as it is, as the next sync_msg item of openKfID ("" for the default
// account), for tests of malformed pages: an item without a msgid, with a numeric or null one, or
// one that is not an object at all. The item must be valid JSON; it is not checked otherwise and
// has no effect on sessions, quotas or customers. It panics on invalid JSON or an unknown account
// (programming errors in a test).
func (s *Server) AddRawItem(openKfID string, item json.RawMessage) {
	if !json.Valid(item) {
		panic("kftest: AddRawItem: invalid JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if openKfID == "" {
		openKfID = s.defaultKf
	}
	acc := s.mustAccountLocked(openKfID)
	acc.msgs = append(acc.msgs, storedMsg{sendTime: s.now(), raw: append(json.RawMessage(nil), item...)})
}
