package kf

import (
	"math"
	"unicode/utf8"

	"github.com/wxkf/wxkf/media"
)

// Content is a message body that send_msg can carry (§6, doc 94677): Text, Image, Voice, Video,
// File, Link, MiniProgram, Menu, Location and CALink, as values or pointers. It is encoded as
// {"msgtype": T, T: {...}} and checked before any I/O against the limits doc 94677 states (the
// constants below) and for structure (required ids, one body per menu item, valid UTF-8). Limits
// known only from second sources are left to WeCom, whose errcode and errmsg come back as *APIError.
type Content interface {
	// MsgType is the msgtype the content is sent as.
	MsgType() MsgType
	// payload checks the content against §6 and returns what is encoded under the msgtype key.
	payload() (any, error)
}

// Limits of send_msg bodies stated by doc 94677 (§6), enforced before any I/O.
const (
	MaxLinkTitleBytes        = 128
	MaxLinkDescBytes         = 512
	MaxURLBytes              = 2048
	MaxMiniProgramTitleBytes = 64
	MaxMenuHeadTailBytes     = 1024
	MaxMenuItems             = 10
	// MaxMsgIDBytes is the longest client msgid; it must match [0-9a-zA-Z_-]*.
	MaxMsgIDBytes = 32
)

// NewText returns a text message (≤ 2048 bytes of valid UTF-8, media.MaxTextBytes).
func NewText(content string) *Text { return &Text{Content: content} }

// NewImage returns an image message for an uploaded image.
func NewImage(mediaID string) *Image { return &Image{MediaID: mediaID} }

// NewVoice returns a voice message for uploaded AMR audio.
func NewVoice(mediaID string) *Voice { return &Voice{MediaID: mediaID} }

// NewVideo returns a video message for an uploaded MP4.
func NewVideo(mediaID string) *Video { return &Video{MediaID: mediaID} }

// NewFile returns a file message for an uploaded file.
func NewFile(mediaID string) *File { return &File{MediaID: mediaID} }

// NewLink returns a link card: title ≤ 128 B, desc ≤ 512 B, a url ≤ 2048 B and the media_id of an
// uploaded thumbnail image (doc 94677).
func NewLink(title, desc, rawURL, thumbMediaID string) *Link {
	return &Link{Title: title, Desc: desc, URL: rawURL, ThumbMediaID: thumbMediaID}
}

// NewMiniProgram returns a mini program card (title ≤ 64 B; thumbMediaID an uploaded image).
func NewMiniProgram(appID, title, thumbMediaID, pagePath string) *MiniProgram {
	return &MiniProgram{AppID: appID, Title: title, ThumbMediaID: thumbMediaID, PagePath: pagePath}
}

// NewMenu returns a msgmenu message: head and tail text (≤ 1024 B each, may be empty) around at
// most 10 items.
func NewMenu(head string, items []MenuItem, tail string) *Menu {
	return &Menu{HeadContent: head, List: items, TailContent: tail}
}

// MenuClick is a menu button: clicking it sends content back as a text message whose menu_id is id.
// Second sources give id 1–64 bytes and content at most 128 bytes; those limits are WeCom's to
// enforce (it answers with an errcode), not checked here.
func MenuClick(id, content string) MenuItem {
	return MenuItem{Type: MenuItemClick, Click: &MenuClickItem{ID: id, Content: content}}
}

// MenuView is a menu item that opens an http(s) URL.
func MenuView(rawURL, content string) MenuItem {
	return MenuItem{Type: MenuItemView, View: &MenuViewItem{URL: rawURL, Content: content}}
}

// MenuMiniProgram is a menu item that opens a mini program page.
func MenuMiniProgram(appID, pagePath, content string) MenuItem {
	return MenuItem{Type: MenuItemMiniProgram, MiniProgram: &MenuMiniProgramItem{AppID: appID, PagePath: pagePath, Content: content}}
}

// MenuText is plain text in a menu; noNewline keeps the next item on the same line.
func MenuText(content string, noNewline bool) MenuItem {
	t := &MenuTextItem{Content: content}
	if noNewline {
		t.NoNewline = 1
	}
	return MenuItem{Type: MenuItemText, Text: t}
}

// NewLocation returns a location message.
func NewLocation(name, address string, latitude, longitude float64) *Location {
	return &Location{Name: name, Address: address, Latitude: latitude, Longitude: longitude}
}

// CALink is a 获客助手 (customer acquisition) link message (§6 ca_link).
type CALink struct {
	LinkURL string `json:"link_url"`
}

// NewCALink returns a ca_link message for a 获客助手 acquisition link (https://work.weixin.qq.com/ca/…).
func NewCALink(linkURL string) *CALink { return &CALink{LinkURL: linkURL} }

// MsgType is "text".
func (Text) MsgType() MsgType { return MsgTypeText }

// MsgType is "image".
func (Image) MsgType() MsgType { return MsgTypeImage }

// MsgType is "voice".
func (Voice) MsgType() MsgType { return MsgTypeVoice }

// MsgType is "video".
func (Video) MsgType() MsgType { return MsgTypeVideo }

// MsgType is "file".
func (File) MsgType() MsgType { return MsgTypeFile }

// MsgType is "link".
func (Link) MsgType() MsgType { return MsgTypeLink }

// MsgType is "miniprogram".
func (MiniProgram) MsgType() MsgType { return MsgTypeMiniProgram }

// MsgType is "msgmenu".
func (Menu) MsgType() MsgType { return MsgTypeMsgMenu }

// MsgType is "location".
func (Location) MsgType() MsgType { return MsgTypeLocation }

// MsgType is "ca_link".
func (CALink) MsgType() MsgType { return MsgTypeCALink }

type sendText struct {
	Content string `json:"content"`
}

func (t Text) payload() (any, error) {
	if err := checkText("text content", t.Content, media.MaxTextBytes, true); err != nil {
		return nil, err
	}
	// menu_id only exists on received texts.
	return sendText{Content: t.Content}, nil
}

func (m Image) payload() (any, error) { return m, checkMediaID(MsgTypeImage, m.MediaID) }
func (m Voice) payload() (any, error) { return m, checkMediaID(MsgTypeVoice, m.MediaID) }
func (m Video) payload() (any, error) { return m, checkMediaID(MsgTypeVideo, m.MediaID) }
func (m File) payload() (any, error)  { return m, checkMediaID(MsgTypeFile, m.MediaID) }

func checkMediaID(t MsgType, id string) error {
	if id == "" {
		return invalidf("%s: media_id is required", t)
	}
	return nil
}

type sendLink struct {
	Title        string `json:"title"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	ThumbMediaID string `json:"thumb_media_id"`
}

func (l Link) payload() (any, error) {
	if err := checkText("link title", l.Title, MaxLinkTitleBytes, true); err != nil {
		return nil, err
	}
	if err := checkText("link desc", l.Desc, MaxLinkDescBytes, false); err != nil {
		return nil, err
	}
	if err := checkURL("link url", l.URL); err != nil {
		return nil, err
	}
	if l.ThumbMediaID == "" {
		return nil, invalidf("link: thumb_media_id is required")
	}
	// pic_url only exists on received links.
	return sendLink{Title: l.Title, Desc: l.Desc, URL: l.URL, ThumbMediaID: l.ThumbMediaID}, nil
}

func (p MiniProgram) payload() (any, error) {
	switch {
	case p.AppID == "":
		return nil, invalidf("miniprogram: appid is required")
	case p.ThumbMediaID == "":
		return nil, invalidf("miniprogram: thumb_media_id is required")
	case p.PagePath == "":
		return nil, invalidf("miniprogram: pagepath is required")
	}
	if err := checkText("miniprogram title", p.Title, MaxMiniProgramTitleBytes, false); err != nil {
		return nil, err
	}
	return p, nil
}

func (m Menu) payload() (any, error) {
	if err := checkText("msgmenu head_content", m.HeadContent, MaxMenuHeadTailBytes, false); err != nil {
		return nil, err
	}
	if err := checkText("msgmenu tail_content", m.TailContent, MaxMenuHeadTailBytes, false); err != nil {
		return nil, err
	}
	if len(m.List) > MaxMenuItems {
		// WeCom answers 95008 (§6).
		return nil, invalidf("msgmenu has %d items, max %d", len(m.List), MaxMenuItems)
	}
	if len(m.List) == 0 && m.HeadContent == "" && m.TailContent == "" {
		return nil, invalidf("msgmenu is empty")
	}
	for i, it := range m.List {
		if err := it.check(); err != nil {
			return nil, invalidf("msgmenu item %d: %v", i, err)
		}
	}
	if m.List == nil {
		m.List = []MenuItem{}
	}
	return m, nil
}

// check verifies the item's structure: exactly the field named by Type is set (else WeCom answers
// 95009), with what identifies it (a view's url, a mini program's appid and pagepath), and its texts
// are valid UTF-8 (encoding/json would silently replace invalid bytes). The item limits that only
// second sources give (click id 1–64 bytes, item content ≤ 128 or 1024 bytes, …) are not checked
// here: WeCom's answer and its errcode and errmsg come back as an *APIError (see docs/wecom-api.md
// §6, "Limits enforced locally").
func (it MenuItem) check() error {
	set := 0
	for _, p := range []bool{it.Click != nil, it.View != nil, it.MiniProgram != nil, it.Text != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return invalidf("type %q needs exactly one of click, view, miniprogram, text set (got %d)", it.Type, set)
	}
	switch it.Type {
	case MenuItemClick:
		if it.Click == nil {
			return invalidf("type click without click")
		}
		return checkUTF8("click", it.Click.ID, it.Click.Content)
	case MenuItemView:
		if it.View == nil {
			return invalidf("type view without view")
		}
		if it.View.URL == "" {
			return invalidf("view url is empty")
		}
		return checkUTF8("view", it.View.URL, it.View.Content)
	case MenuItemMiniProgram:
		if it.MiniProgram == nil {
			return invalidf("type miniprogram without miniprogram")
		}
		if it.MiniProgram.AppID == "" || it.MiniProgram.PagePath == "" {
			return invalidf("miniprogram item needs appid and pagepath")
		}
		return checkUTF8("miniprogram", it.MiniProgram.AppID, it.MiniProgram.PagePath, it.MiniProgram.Content)
	case MenuItemText:
		if it.Text == nil {
			return invalidf("type text without text")
		}
		return checkUTF8("text", it.Text.Content)
	}
	return invalidf("unknown menu item type %q", it.Type)
}

// checkUTF8 requires every string of a menu item to be valid UTF-8.
func checkUTF8(item string, ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return invalidf("%s item: %q is not valid UTF-8", item, s)
		}
	}
	return nil
}

func (l Location) payload() (any, error) {
	if math.IsNaN(l.Latitude) || l.Latitude < -90 || l.Latitude > 90 {
		return nil, invalidf("location latitude %v not in [-90, 90]", l.Latitude)
	}
	if math.IsNaN(l.Longitude) || l.Longitude < -180 || l.Longitude > 180 {
		return nil, invalidf("location longitude %v not in [-180, 180]", l.Longitude)
	}
	if !utf8.ValidString(l.Name) || !utf8.ValidString(l.Address) {
		return nil, invalidf("location name and address must be valid UTF-8")
	}
	return l, nil
}

func (l CALink) payload() (any, error) {
	if err := checkURL("ca_link link_url", l.LinkURL); err != nil {
		return nil, err
	}
	return l, nil
}

// checkText checks a byte limit and UTF-8 validity.
func checkText(field, s string, maxBytes int, required bool) error {
	switch {
	case required && s == "":
		return invalidf("%s is empty", field)
	case len(s) > maxBytes:
		return invalidf("%s is %d bytes, max %d", field, len(s), maxBytes)
	case !utf8.ValidString(s):
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

// checkURL requires a URL of at most MaxURLBytes (§6, doc 94677) in valid UTF-8. Its scheme is
// WeCom's to judge: no kf page found asks for http(s) (the published send_msg sample itself carries
// the placeholder "URL").
func checkURL(field, s string) error {
	return checkText(field, s, MaxURLBytes, true)
}

// contentPayload checks c (rejecting nil, including typed nil pointers) and returns its msgtype and
// payload.
func contentPayload(c Content) (MsgType, any, error) {
	if isNilContent(c) {
		return "", nil, invalidf("content is nil")
	}
	p, err := c.payload()
	if err != nil {
		return "", nil, err
	}
	return c.MsgType(), p, nil
}

func isNilContent(c Content) bool {
	switch v := c.(type) {
	case nil:
		return true
	case *Text:
		return v == nil
	case *Image:
		return v == nil
	case *Voice:
		return v == nil
	case *Video:
		return v == nil
	case *File:
		return v == nil
	case *Link:
		return v == nil
	case *MiniProgram:
		return v == nil
	case *Menu:
		return v == nil
	case *Location:
		return v == nil
	case *CALink:
		return v == nil
	}
	return false
}
