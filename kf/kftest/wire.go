package kftest

import "encoding/json"

// The wire format the fake reads and writes, exported so that tests and tools can decode what it
// recorded (Sent.Body, Record.Request, Record.Response) without declaring these shapes again. The
// JSON names are WeCom's (§4, §6; doc 94670, 94677, 95122).

// SendRequest is a send_msg or send_msg_on_event request body: the header (touser, open_kfid and
// msgid for send_msg; code and msgid for send_msg_on_event), msgtype, and the body under the key the
// msgtype names. Sent.Request decodes an accepted send into it.
type SendRequest struct {
	ToUser   string `json:"touser,omitempty"`
	OpenKfID string `json:"open_kfid,omitempty"`
	Code     string `json:"code,omitempty"`
	MsgID    string `json:"msgid,omitempty"`
	MsgType  string `json:"msgtype"`

	Text        *TextBody        `json:"text,omitempty"`
	Image       *MediaBody       `json:"image,omitempty"`
	Voice       *MediaBody       `json:"voice,omitempty"`
	Video       *MediaBody       `json:"video,omitempty"`
	File        *MediaBody       `json:"file,omitempty"`
	Link        *LinkBody        `json:"link,omitempty"`
	MiniProgram *MiniProgramBody `json:"miniprogram,omitempty"`
	MsgMenu     *MenuBody        `json:"msgmenu,omitempty"`
	Location    *LocationBody    `json:"location,omitempty"`
	CALink      *CALinkBody      `json:"ca_link,omitempty"`
}

// TextBody is a text message: content, at most MaxTextBytes.
type TextBody struct {
	Content string `json:"content"`
}

// MediaBody is an image, voice, video or file message: the media_id of an upload.
type MediaBody struct {
	MediaID string `json:"media_id"`
}

// LinkBody is a link card as sent: title, desc, url and the media_id of a thumbnail image.
type LinkBody struct {
	Title        string `json:"title"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// MiniProgramBody is a mini program card as sent.
type MiniProgramBody struct {
	AppID        string `json:"appid"`
	Title        string `json:"title,omitempty"`
	ThumbMediaID string `json:"thumb_media_id"`
	PagePath     string `json:"pagepath"`
}

// MenuBody is a msgmenu: head text, at most MaxMenuItems items, tail text.
type MenuBody struct {
	HeadContent string     `json:"head_content,omitempty"`
	List        []MenuItem `json:"list"`
	TailContent string     `json:"tail_content,omitempty"`
}

// MenuItem is one msgmenu item: Type ("click", "view", "miniprogram" or "text") and the field it
// names.
type MenuItem struct {
	Type        string               `json:"type"`
	Click       *MenuClickItem       `json:"click,omitempty"`
	View        *MenuViewItem        `json:"view,omitempty"`
	MiniProgram *MenuMiniProgramItem `json:"miniprogram,omitempty"`
	Text        *MenuTextItem        `json:"text,omitempty"`
}

// MenuClickItem is a reply button: a click comes back as a text with menu_id ID.
type MenuClickItem struct {
	ID      string `json:"id"`
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

// MenuTextItem is plain text; NoNewline 1 keeps the next item on the same line.
type MenuTextItem struct {
	Content   string `json:"content"`
	NoNewline int    `json:"no_newline,omitempty"`
}

// LocationBody is a location message.
type LocationBody struct {
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// CALinkBody is a 获客助手 link message.
type CALinkBody struct {
	LinkURL string `json:"link_url"`
}

// Request decodes the body of the accepted send.
func (s Sent) Request() (SendRequest, error) {
	var r SendRequest
	err := json.Unmarshal(s.Body, &r)
	return r, err
}

// SyncPage is a sync_msg answer as the fake writes it (§4): decode a Record.Response of
// /cgi-bin/kf/sync_msg into it.
type SyncPage struct {
	ErrCode    int        `json:"errcode"`
	ErrMsg     string     `json:"errmsg"`
	NextCursor string     `json:"next_cursor"`
	HasMore    int        `json:"has_more"`
	MsgList    []SyncItem `json:"msg_list"`
}

// SyncItem is the envelope of one sync_msg item; Event is set for msgtype "event". Other bodies stay
// under their msgtype key in the raw item.
type SyncItem struct {
	MsgID          string     `json:"msgid"`
	OpenKfID       string     `json:"open_kfid"`
	ExternalUserID string     `json:"external_userid,omitempty"`
	SendTime       int64      `json:"send_time"`
	Origin         int        `json:"origin"`
	ServicerUserID string     `json:"servicer_userid,omitempty"`
	MsgType        string     `json:"msgtype"`
	Event          *SyncEvent `json:"event,omitempty"`
}

// SyncEvent is what every event body carries (§5).
type SyncEvent struct {
	EventType      string `json:"event_type"`
	OpenKfID       string `json:"open_kfid,omitempty"`
	ExternalUserID string `json:"external_userid,omitempty"`
}
