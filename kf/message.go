package kf

import (
	"encoding/json"
	"strconv"
	"time"
)

// MsgType is a message type of sync_msg and send_msg (§4, §6; doc 94670, 94677).
type MsgType string

// Message types. Received: all but CALink; sent: Text to CALink except BusinessCard, the channels
// types and MergedMsg.
const (
	MsgTypeText                MsgType = "text"
	MsgTypeImage               MsgType = "image"
	MsgTypeVoice               MsgType = "voice"
	MsgTypeVideo               MsgType = "video"
	MsgTypeFile                MsgType = "file"
	MsgTypeLocation            MsgType = "location"
	MsgTypeLink                MsgType = "link"
	MsgTypeBusinessCard        MsgType = "business_card"
	MsgTypeMiniProgram         MsgType = "miniprogram"
	MsgTypeMsgMenu             MsgType = "msgmenu"
	MsgTypeChannelsShopProduct MsgType = "channels_shop_product"
	MsgTypeChannelsShopOrder   MsgType = "channels_shop_order"
	MsgTypeMergedMsg           MsgType = "merged_msg"
	MsgTypeChannels            MsgType = "channels"
	MsgTypeEvent               MsgType = "event"
	MsgTypeCALink              MsgType = "ca_link"
)

// Known reports whether this package has a typed body for t in received messages.
func (t MsgType) Known() bool {
	switch t {
	case MsgTypeText, MsgTypeImage, MsgTypeVoice, MsgTypeVideo, MsgTypeFile, MsgTypeLocation,
		MsgTypeLink, MsgTypeBusinessCard, MsgTypeMiniProgram, MsgTypeMsgMenu,
		MsgTypeChannelsShopProduct, MsgTypeChannelsShopOrder, MsgTypeMergedMsg, MsgTypeChannels,
		MsgTypeEvent:
		return true
	}
	return false
}

// Origin is who a synced message comes from (§4 "origin").
type Origin int

// Origins of sync_msg messages.
const (
	// OriginCustomer is a message of the WeChat customer.
	OriginCustomer Origin = 3
	// OriginSystem is a system event (msgtype "event").
	OriginSystem Origin = 4
	// OriginServicer is a message a human servicer sent from the WeCom client (ServicerUserID set).
	OriginServicer Origin = 5
)

// String returns "customer", "system" or "servicer".
func (o Origin) String() string {
	switch o {
	case OriginCustomer:
		return "customer"
	case OriginSystem:
		return "system"
	case OriginServicer:
		return "servicer"
	}
	return "Origin(" + strconv.Itoa(int(o)) + ")"
}

// Message is one item of sync_msg's msg_list (§4, doc 94670).
//
// The body is in the field of Body named by MsgType (Text for "text", Event for "event", ...). A
// msgtype this package does not know (meeting, schedule, note, anything new) leaves every typed
// field nil and puts the body in Raw; so does a known msgtype whose body does not have the
// documented shape. Decoding never fails a page for either. A nil typed field with a known
// MsgType and a nil Raw means the body was missing.
//
// Message marshals back to the same JSON (send_time as unix seconds, Raw under the msgtype key).
type Message struct {
	// MsgID is WeCom's id of the message; it may be longer than 32 characters.
	MsgID    string `json:"msgid"`
	OpenKfID string `json:"open_kfid"`
	// ExternalUserID is the customer; may be empty for events (see Event.ExternalUserID).
	ExternalUserID string `json:"external_userid,omitempty"`
	// SendTime is send_time (unix seconds); the zero Time when absent.
	SendTime time.Time `json:"-"`
	Origin   Origin    `json:"origin"`
	// ServicerUserID is the WeCom member who sent the message (origin 5).
	ServicerUserID string  `json:"servicer_userid,omitempty"`
	MsgType        MsgType `json:"msgtype"`
	Body

	// Burst is set when the Channel merged a burst of the customer's messages into one handler call
	// (WithBurstWindow): every message of the burst, oldest first, the last being this message. The
	// handler answers them together; nil for a message handled on its own.
	Burst []*Message `json:"-"`
}

// Body holds the typed body of a message; at most the field named by the msgtype is set. It is
// embedded in Message and MergedMsgItem.
type Body struct {
	Text                *Text                `json:"text,omitempty"`
	Image               *Image               `json:"image,omitempty"`
	Voice               *Voice               `json:"voice,omitempty"`
	Video               *Video               `json:"video,omitempty"`
	File                *File                `json:"file,omitempty"`
	Location            *Location            `json:"location,omitempty"`
	Link                *Link                `json:"link,omitempty"`
	BusinessCard        *BusinessCard        `json:"business_card,omitempty"`
	MiniProgram         *MiniProgram         `json:"miniprogram,omitempty"`
	MsgMenu             *Menu                `json:"msgmenu,omitempty"`
	ChannelsShopProduct *ChannelsShopProduct `json:"channels_shop_product,omitempty"`
	ChannelsShopOrder   *ChannelsShopOrder   `json:"channels_shop_order,omitempty"`
	MergedMsg           *MergedMsg           `json:"merged_msg,omitempty"`
	Channels            *Channels            `json:"channels,omitempty"`
	Event               *Event               `json:"event,omitempty"`
	// Raw is the body of an unknown msgtype, or of a known one whose shape did not match (its
	// typed field is then nil). Unknown event types keep theirs in Event.Raw instead.
	Raw json.RawMessage `json:"-"`
}

// Text is a text message: received (§4, MenuID set when the customer clicked a menu item) and sent
// (§6: Content ≤ 2048 bytes of UTF-8; MenuID is not sent).
type Text struct {
	Content string `json:"content"`
	MenuID  string `json:"menu_id,omitempty"`
}

// Image is an image message: the media_id of an uploaded image (§4, §6).
type Image struct {
	MediaID string `json:"media_id"`
}

// Voice is a voice message: the media_id of AMR audio (SILK when synced with voice_format 1) (§4, §6).
type Voice struct {
	MediaID string `json:"media_id"`
}

// Video is a video message: the media_id of an MP4 (§4, §6).
type Video struct {
	MediaID string `json:"media_id"`
}

// File is a file message: the media_id of a file (§4, §6).
type File struct {
	MediaID string `json:"media_id"`
}

// Location is a location, received or sent (§4, §6).
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// Link is a link card. Received links carry PicURL (§4); sent links carry ThumbMediaID (§6:
// title ≤ 128 B, desc ≤ 512 B, url ≤ 2048 B).
type Link struct {
	Title        string `json:"title"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	PicURL       string `json:"pic_url,omitempty"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
}

// BusinessCard is a received contact card of a WeCom member (§4).
type BusinessCard struct {
	UserID string `json:"userid"`
}

// MiniProgram is a mini program card, received or sent (§4, §6: title ≤ 64 B).
type MiniProgram struct {
	Title        string `json:"title,omitempty"`
	AppID        string `json:"appid"`
	PagePath     string `json:"pagepath"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// Menu is a msgmenu message, received or sent (§6: head and tail ≤ 1024 B, at most 10 items).
type Menu struct {
	HeadContent string     `json:"head_content,omitempty"`
	List        []MenuItem `json:"list"`
	TailContent string     `json:"tail_content,omitempty"`
}

// MenuItemType is the type of a msgmenu item (§6).
type MenuItemType string

// Menu item types.
const (
	MenuItemClick       MenuItemType = "click"
	MenuItemView        MenuItemType = "view"
	MenuItemMiniProgram MenuItemType = "miniprogram"
	MenuItemText        MenuItemType = "text"
)

// MenuItem is one msgmenu item: Type and the matching field set. Use the MenuClick, MenuView,
// MenuMiniProgram and MenuText constructors.
type MenuItem struct {
	Type        MenuItemType         `json:"type"`
	Click       *MenuClickItem       `json:"click,omitempty"`
	View        *MenuViewItem        `json:"view,omitempty"`
	MiniProgram *MenuMiniProgramItem `json:"miniprogram,omitempty"`
	Text        *MenuTextItem        `json:"text,omitempty"`
}

// MenuClickItem is a reply button: clicking it sends Content back as a text whose menu_id is ID.
type MenuClickItem struct {
	ID      string `json:"id,omitempty"`
	Content string `json:"content"`
}

// MenuViewItem opens URL.
type MenuViewItem struct {
	URL     string `json:"url"`
	Content string `json:"content"`
}

// MenuMiniProgramItem opens a mini program page.
type MenuMiniProgramItem struct {
	AppID    string `json:"appid"`
	PagePath string `json:"pagepath"`
	Content  string `json:"content"`
}

// MenuTextItem is plain text inside the menu; NoNewline 1 keeps the next item on the same line.
type MenuTextItem struct {
	Content   string `json:"content"`
	NoNewline int    `json:"no_newline,omitempty"`
}

// ChannelsShopProduct is a WeChat Channels shop product card (§4, doc 94670). No copy of the official
// page settles its field names, and the published samples disagree: decoding accepts both head_image
// and head_img, both shop_head_image and shop_head_img, and sales_price as a string or a number
// (SalesPrice keeps its decimal text, in fen). Encoding uses head_image, shop_head_image and a
// string price.
type ChannelsShopProduct struct {
	ProductID     string `json:"product_id"`
	HeadImage     string `json:"head_image,omitempty"`
	Title         string `json:"title,omitempty"`
	SalesPrice    string `json:"sales_price,omitempty"`
	ShopNickname  string `json:"shop_nickname,omitempty"`
	ShopHeadImage string `json:"shop_head_image,omitempty"`
}

// ChannelsShopOrder is a WeChat Channels shop order card (§4).
type ChannelsShopOrder struct {
	OrderID       string `json:"order_id"`
	ProductTitles string `json:"product_titles,omitempty"`
	PriceWording  string `json:"price_wording,omitempty"`
	State         string `json:"state,omitempty"`
	ImageURL      string `json:"image_url,omitempty"`
	ShopNickname  string `json:"shop_nickname,omitempty"`
}

// ChannelsSubType is the kind of a channels message (§4).
type ChannelsSubType int

// Channels sub types.
const (
	ChannelsFeed    ChannelsSubType = 1 // a Channels post (视频号动态)
	ChannelsLive    ChannelsSubType = 2 // a Channels live stream (视频号直播)
	ChannelsProfile ChannelsSubType = 3 // a Channels profile card (视频号名片)
)

// Channels is a shared WeChat Channels item (§4).
type Channels struct {
	SubType  ChannelsSubType `json:"sub_type"`
	Nickname string          `json:"nickname,omitempty"`
	Title    string          `json:"title,omitempty"`
}

// MergedMsg is a forwarded chat record (§4).
type MergedMsg struct {
	Title string          `json:"title,omitempty"`
	Items []MergedMsgItem `json:"item"`
}

// MergedMsgItem is one message of a chat record. WeCom sends its body as a JSON string
// (msg_content); decoding parses it into the embedded Body (field named by MsgType, or Raw), and
// keeps the string in MsgContent.
type MergedMsgItem struct {
	SendTime   time.Time `json:"-"`
	MsgType    MsgType   `json:"msgtype"`
	SenderName string    `json:"sender_name,omitempty"`
	// MsgContent is the body as WeCom sent it, a JSON document in a string. When empty,
	// marshalling encodes Body in its place.
	MsgContent string `json:"msg_content"`
	Body       `json:"-"`
}

// EventType is the event_type of an event message (§5, doc 94670).
type EventType string

// Event types of sync_msg.
const (
	EventEnterSession                  EventType = "enter_session"
	EventMsgSendFail                   EventType = "msg_send_fail"
	EventServicerStatusChange          EventType = "servicer_status_change"
	EventSessionStatusChange           EventType = "session_status_change"
	EventUserRecallMsg                 EventType = "user_recall_msg"
	EventServicerRecallMsg             EventType = "servicer_recall_msg"
	EventRejectCustomerMsgSwitchChange EventType = "reject_customer_msg_switch_change"
)

// Known reports whether this package documents fields for t.
func (t EventType) Known() bool {
	switch t {
	case EventEnterSession, EventMsgSendFail, EventServicerStatusChange, EventSessionStatusChange,
		EventUserRecallMsg, EventServicerRecallMsg, EventRejectCustomerMsgSwitchChange:
		return true
	}
	return false
}

// Event is the body of a msgtype "event" message (§5). Fields are flat; which ones are set
// depends on EventType, as noted per field. An event type this package does not know keeps its
// whole body in Raw (the common fields are still decoded).
type Event struct {
	EventType      EventType `json:"event_type"`
	OpenKfID       string    `json:"open_kfid,omitempty"`
	ExternalUserID string    `json:"external_userid,omitempty"`
	// ServicerUserID: servicer_status_change, servicer_recall_msg, reject_customer_msg_switch_change.
	ServicerUserID string `json:"servicer_userid,omitempty"`

	// enter_session: the scene and scene_param of the contact way the customer came through, the
	// single-use welcome code (valid 20 s; only when the customer got no welcome in 48 h and has not
	// written) and the WeChat Channels the customer came from.
	Scene          string          `json:"scene,omitempty"`
	SceneParam     string          `json:"scene_param,omitempty"`
	WelcomeCode    string          `json:"welcome_code,omitempty"`
	WechatChannels *WechatChannels `json:"wechat_channels,omitempty"`

	// msg_send_fail: the msgid of the send that failed and why.
	FailMsgID string   `json:"fail_msgid,omitempty"`
	FailType  FailType `json:"fail_type,omitempty"`

	// servicer_status_change: the servicer's new status and, when stopped, the stop type
	// (0 stopped receiving, 1 suspended).
	Status   ServicerStatus `json:"status,omitempty"`
	StopType int            `json:"stop_type,omitempty"`

	// session_status_change: what happened, the servicers before and after, and msg_code for
	// send_msg_on_event (change types 1 and 3; valid 48 h and 20 s respectively).
	ChangeType        SessionChangeType `json:"change_type,omitempty"`
	OldServicerUserID string            `json:"old_servicer_userid,omitempty"`
	NewServicerUserID string            `json:"new_servicer_userid,omitempty"`
	MsgCode           string            `json:"msg_code,omitempty"`

	// user_recall_msg, servicer_recall_msg: the msgid recalled.
	RecallMsgID string `json:"recall_msgid,omitempty"`

	// reject_customer_msg_switch_change: 1 the servicer rejects the customer's messages, 0 accepts.
	RejectSwitch int `json:"reject_switch,omitempty"`

	// Raw is the whole event body when EventType is unknown or the body did not have the
	// documented shape. When set, it is what MarshalJSON emits.
	Raw json.RawMessage `json:"-"`
}

// WechatChannels is the WeChat Channels (视频号) context of a customer (§5 enter_session, §8).
type WechatChannels struct {
	Nickname     string `json:"nickname,omitempty"`
	ShopNickname string `json:"shop_nickname,omitempty"`
	Scene        int    `json:"scene,omitempty"`
}

// FailType is why a sent message failed (§5 msg_send_fail, doc 94670).
type FailType int

// Failure types of msg_send_fail (doc 94670). 7 and 9 are listed by earlier versions of the page
// (as copied into third-party SDKs); 13 is UNCONFIRMED: it appears in one third-party copy only.
const (
	FailUnknown          FailType = 0 // unknown reason (未知原因)
	FailAccountDeleted   FailType = 1 // the kf account was deleted
	FailAppClosed        FailType = 2 // the app was disabled
	FailSessionExpired   FailType = 4 // more than 48 h since the customer's last message
	FailSessionClosed    FailType = 5 // the session was closed
	FailQuotaExceeded    FailType = 6 // more than 5 messages since the customer's last message
	FailChannelsNotBound FailType = 7 // no WeChat Channels (视频号) bound (未绑定视频号)
	FailCorpNotVerified  FailType = 8 // the corp is not verified (主体未验证)
	// FailChannelsNotBoundCorpNotVerified: no WeChat Channels bound and the corp not verified.
	FailChannelsNotBoundCorpNotVerified FailType = 9
	FailUserRejected                    FailType = 10 // the customer refuses messages (用户拒收)
	FailNoMemberLoggedIn                FailType = 11 // no member of the corp is logged in to the WeCom app
	FailMsgTypeBanned                   FailType = 12 // the message type is banned for the kf component
	FailSecurity                        FailType = 13 // UNCONFIRMED: a security restriction (安全限制)
)

// String describes the failure type in English.
func (f FailType) String() string {
	switch f {
	case FailUnknown:
		return "unknown"
	case FailAccountDeleted:
		return "account deleted"
	case FailAppClosed:
		return "app closed"
	case FailSessionExpired:
		return "session expired (48 h)"
	case FailSessionClosed:
		return "session closed"
	case FailQuotaExceeded:
		return "over the 5-message limit"
	case FailChannelsNotBound:
		return "no WeChat Channels bound"
	case FailCorpNotVerified:
		return "corp not verified"
	case FailChannelsNotBoundCorpNotVerified:
		return "no WeChat Channels bound and corp not verified"
	case FailUserRejected:
		return "customer rejects messages"
	case FailNoMemberLoggedIn:
		return "no member logged in"
	case FailMsgTypeBanned:
		return "message type banned"
	case FailSecurity:
		return "security restriction (unconfirmed)"
	}
	return "FailType(" + strconv.Itoa(int(f)) + ")"
}

// ServicerStatus is a servicer's reception status in servicer_status_change events (§5). Note that
// servicer/list encodes status the other way round (see Servicer.Receiving).
type ServicerStatus int

// Servicer statuses of servicer_status_change.
const (
	ServicerReceiving ServicerStatus = 1
	ServicerStopped   ServicerStatus = 2
)

// String returns "receiving" or "stopped".
func (s ServicerStatus) String() string {
	switch s {
	case ServicerReceiving:
		return "receiving"
	case ServicerStopped:
		return "stopped"
	}
	return "ServicerStatus(" + strconv.Itoa(int(s)) + ")"
}

// SessionChangeType is what happened in a session_status_change event (§5).
type SessionChangeType int

// Session change types.
const (
	SessionTakenFromQueue SessionChangeType = 1 // a servicer took the customer from the queue
	SessionTransferred    SessionChangeType = 2 // transferred to another servicer
	SessionEnded          SessionChangeType = 3 // the servicer ended the session
	SessionRejoined       SessionChangeType = 4 // rejoined the queue
)

// String describes the change in English.
func (t SessionChangeType) String() string {
	switch t {
	case SessionTakenFromQueue:
		return "taken from queue"
	case SessionTransferred:
		return "transferred"
	case SessionEnded:
		return "ended"
	case SessionRejoined:
		return "rejoined"
	}
	return "SessionChangeType(" + strconv.Itoa(int(t)) + ")"
}
