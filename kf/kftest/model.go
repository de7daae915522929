package kftest

import (
	"encoding/json"
	"time"
)

// Session states of service_state (§7, doc 94698).
const (
	StateNew      = 0 // 未处理: new session, nobody handles it yet
	StateAssist   = 1 // 由智能助手接待: the API (the bot) handles it
	StateQueued   = 2 // 待接入池排队中
	StateServicer = 3 // 由人工接待: a human servicer handles it
	StateEnded    = 4 // 已结束/未开始
)

// Servicer statuses for AddServicer, in servicer/list's encoding (§8): 0 receiving, 1 stopped.
// ServicerNotActivated is the fake's own value for a servicer without an activated licence:
// trans to them fails with 95014; servicer/list shows them as stopped.
const (
	ServicerReceiving    = 0
	ServicerStopped      = 1
	ServicerNotActivated = 2
)

// Message origins of sync_msg items (§4).
const (
	OriginCustomer = 3 // sent by the WeChat customer
	OriginSystem   = 4 // a system event
	OriginServicer = 5 // sent by a human servicer in the WeCom client
)

type accessToken struct {
	expires     time.Time
	invalidated bool
	expired     bool // forced by ExpireTokens
}

type account struct {
	openKfID  string
	name      string
	mediaID   string
	msgs      []storedMsg
	clientIDs map[string]struct{} // client msgids of accepted sends
	sessions  map[string]*session
	servicers map[string]*servicer
	svcOrder  []string
	depts     []int64
	syncToks  map[string]time.Time // callback token → expiry
}

type storedMsg struct {
	msgID    string
	sendTime time.Time
	origin   int
	user     string
	servicer string
	raw      json.RawMessage // the complete sync_msg item
}

type session struct {
	state        int
	servicer     string
	lastCustomer time.Time // send_time of the latest customer message; zero: never
	sentSince    int       // accepted send_msg since lastCustomer
	lastWelcome  time.Time // when a welcome message was last sent with a welcome_code
	codeQueued   bool      // trans → 2 already returned its msg_code in this session
	codeServicer bool      // trans → 3 already returned its msg_code in this session
}

type servicer struct {
	userid string
	status int
}

type customer struct {
	Customer
	scene, sceneParam string
}

// Customer is a WeChat customer's profile as customer/batchget returns it (§8). Customers become
// known when they send a message or enter a session; SetCustomer sets a profile explicitly.
type Customer struct {
	ExternalUserID string
	Nickname       string
	Avatar         string
	Gender         int // 0 unknown, 1 male, 2 female
	UnionID        string
}

type codeKind int

const (
	codeWelcome codeKind = iota + 1
	codeQueue
	codeTaken
	codeEnd
)

type eventCode struct {
	kind     codeKind
	openKfID string
	user     string
	expires  time.Time
	used     bool
}

type mediaItem struct {
	kind        string
	filename    string
	contentType string
	data        []byte
	created     time.Time
}

// Sent is one send_msg or send_msg_on_event call the fake accepted.
type Sent struct {
	OpenKfID    string
	ToUser      string // external_userid
	MsgID       string // the msgid the server answered (the client msgid when one was given)
	ClientMsgID string // the msgid of the request, "" if none
	MsgType     string
	Text        string // text.content for msgtype text
	MediaID     string // media_id for image, voice, video, file
	Body        json.RawMessage
	OnEvent     bool   // sent with send_msg_on_event
	Code        string // the code used, for OnEvent sends
	At          time.Time
}

// Rejection is one API call the fake answered with a non-zero errcode (or HTTP error).
type Rejection struct {
	Path string
	Code int
	Msg  string
	Body json.RawMessage // the request body (JSON endpoints), secrets redacted
}

func newAccount(openKfID, name, mediaID string) *account {
	return &account{
		openKfID:  openKfID,
		name:      name,
		mediaID:   mediaID,
		clientIDs: map[string]struct{}{},
		sessions:  map[string]*session{},
		servicers: map[string]*servicer{},
		syncToks:  map[string]time.Time{},
	}
}

func (a *account) session(user string) *session {
	ss := a.sessions[user]
	if ss == nil {
		ss = &session{}
		a.sessions[user] = ss
	}
	return ss
}

// quotaLeft is how many send_msg the customer can still receive now (§6).
func (ss *session) quotaLeft(now time.Time) int {
	if ss == nil || ss.lastCustomer.IsZero() || now.Sub(ss.lastCustomer) > ReplyWindow {
		return 0
	}
	return max(0, QuotaPerWindow-ss.sentSince)
}

// addAccountLocked creates an account; s.mu held (or construction).
func (s *Server) addAccountLocked(name, mediaID string) string {
	id := "wk" + s.randString(30, idChars)
	s.accounts[id] = newAccount(id, name, mediaID)
	s.accountIDs = append(s.accountIDs, id)
	return id
}

// AddAccount creates another kf account and returns its open_kfid.
func (s *Server) AddAccount(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAccountLocked(name, "")
}

func (s *Server) customerLocked(user string) *customer {
	c := s.customers[user]
	if c == nil {
		c = &customer{Customer: Customer{
			ExternalUserID: user,
			Nickname:       "客户" + shortHash(user),
			Avatar:         "https://wx.qlogo.cn/mmhead/kftest/" + shortHash(user) + "/0",
			UnionID:        "oU" + shortHash("union:"+user) + shortHash(user),
		}}
		s.customers[user] = c
	}
	return c
}

// SetCustomer sets a customer's profile (as customer/batchget returns it) and makes them known.
func (s *Server) SetCustomer(c Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cu := s.customerLocked(c.ExternalUserID)
	cu.Customer = c
}
