package kf

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// messageFields has Message's fields without its methods, so the standard decoder fills it field by
// field (one pass, no per-message re-scan).
type messageFields Message

// wireMessage is a Message as WeCom encodes it: send_time in unix seconds.
type wireMessage struct {
	messageFields
	SendTime int64 `json:"send_time"`
}

func (w *wireMessage) message() Message {
	m := Message(w.messageFields)
	m.SendTime = unixTime(w.SendTime)
	return m
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// UnmarshalJSON decodes one sync_msg item (§4, §5). It fails only on malformed JSON or a value
// that is not an object: unknown msgtypes and event types, and bodies of the wrong shape, end up in
// Raw (see Message).
func (m *Message) UnmarshalJSON(data []byte) error {
	var w wireMessage
	err := json.Unmarshal(data, &w)
	if err != nil && !isTypeError(err) {
		return err
	}
	*m = w.message()
	if err != nil || m.needsRepair() {
		return m.repair(data, err != nil)
	}
	return nil
}

// needsRepair reports a message whose raw body must be kept: an unknown msgtype or event type.
func (m *Message) needsRepair() bool {
	if !m.MsgType.Known() {
		return true
	}
	return m.MsgType == MsgTypeEvent && m.Event != nil && !m.Event.EventType.Known()
}

// repair finishes a message the fast decode could not: it keeps the raw body of unknown types and,
// after a type mismatch (typeErr), decodes the body alone so that a bad body becomes Raw while the
// common fields that did decode are kept.
func (m *Message) repair(data []byte, typeErr bool) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("kf: message is not a JSON object: %w", err)
	}
	var raw json.RawMessage
	if m.MsgType != "" {
		raw = compactRaw(fields[string(m.MsgType)])
	}
	switch {
	case !m.MsgType.Known():
		m.Body = Body{Raw: raw}
	case m.MsgType == MsgTypeEvent:
		m.Body = Body{Event: decodeEvent(raw, typeErr, m.Event)}
	case typeErr:
		var b Body
		if err := decodeBody(m.MsgType, raw, &b); err != nil {
			b = Body{Raw: raw}
		}
		m.Body = b
	}
	return nil
}

// decodeEvent returns the event for an event body: the fast decode's ev when that was clean and
// the type is known; otherwise a best-effort decode with the whole body kept in Raw.
func decodeEvent(raw json.RawMessage, typeErr bool, ev *Event) *Event {
	if raw == nil {
		return nil
	}
	if typeErr || ev == nil {
		ev = new(Event)
		if err := json.Unmarshal(raw, ev); err != nil {
			ev.Raw = raw
			return ev
		}
	}
	if !ev.EventType.Known() {
		ev.Raw = raw
	}
	return ev
}

// decodeBody decodes raw as the body of msgtype t into the matching field of b.
func decodeBody(t MsgType, raw []byte, b *Body) error {
	if raw == nil {
		return errors.New("kf: no body")
	}
	switch t {
	case MsgTypeText:
		return decodeInto(raw, &b.Text)
	case MsgTypeImage:
		return decodeInto(raw, &b.Image)
	case MsgTypeVoice:
		return decodeInto(raw, &b.Voice)
	case MsgTypeVideo:
		return decodeInto(raw, &b.Video)
	case MsgTypeFile:
		return decodeInto(raw, &b.File)
	case MsgTypeLocation:
		return decodeInto(raw, &b.Location)
	case MsgTypeLink:
		return decodeInto(raw, &b.Link)
	case MsgTypeBusinessCard:
		return decodeInto(raw, &b.BusinessCard)
	case MsgTypeMiniProgram:
		return decodeInto(raw, &b.MiniProgram)
	case MsgTypeMsgMenu:
		return decodeInto(raw, &b.MsgMenu)
	case MsgTypeChannelsShopProduct:
		return decodeInto(raw, &b.ChannelsShopProduct)
	case MsgTypeChannelsShopOrder:
		return decodeInto(raw, &b.ChannelsShopOrder)
	case MsgTypeMergedMsg:
		return decodeInto(raw, &b.MergedMsg)
	case MsgTypeChannels:
		return decodeInto(raw, &b.Channels)
	case MsgTypeEvent:
		b.Event = decodeEvent(raw, true, nil)
		return nil
	}
	return fmt.Errorf("kf: unknown msgtype %q", t)
}

func decodeInto[T any](raw []byte, dst **T) error {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	*dst = v
	return nil
}

// field reports whether the typed field for msgtype t is set.
func (b *Body) field(t MsgType) bool {
	switch t {
	case MsgTypeText:
		return b.Text != nil
	case MsgTypeImage:
		return b.Image != nil
	case MsgTypeVoice:
		return b.Voice != nil
	case MsgTypeVideo:
		return b.Video != nil
	case MsgTypeFile:
		return b.File != nil
	case MsgTypeLocation:
		return b.Location != nil
	case MsgTypeLink:
		return b.Link != nil
	case MsgTypeBusinessCard:
		return b.BusinessCard != nil
	case MsgTypeMiniProgram:
		return b.MiniProgram != nil
	case MsgTypeMsgMenu:
		return b.MsgMenu != nil
	case MsgTypeChannelsShopProduct:
		return b.ChannelsShopProduct != nil
	case MsgTypeChannelsShopOrder:
		return b.ChannelsShopOrder != nil
	case MsgTypeMergedMsg:
		return b.MergedMsg != nil
	case MsgTypeChannels:
		return b.Channels != nil
	case MsgTypeEvent:
		return b.Event != nil
	}
	return false
}

// MarshalJSON encodes m as a sync_msg item: send_time in unix seconds, and Raw under the msgtype
// key when the typed field for the msgtype is nil.
func (m Message) MarshalJSON() ([]byte, error) {
	w := wireMessage{messageFields: messageFields(m), SendTime: unixSeconds(m.SendTime)}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, err
	}
	if len(m.Raw) == 0 || m.MsgType == "" || m.Body.field(m.MsgType) {
		return b, nil
	}
	return spliceKey(b, string(m.MsgType), m.Raw)
}

// spliceKey appends "key": raw to the encoded object obj.
func spliceKey(obj []byte, key string, raw json.RawMessage) ([]byte, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("kf: Raw body of %q is not valid JSON", key)
	}
	k, _ := json.Marshal(key)
	out := make([]byte, 0, len(obj)+len(k)+len(raw)+2)
	out = append(out, obj[:len(obj)-1]...)
	if len(obj) > 2 {
		out = append(out, ',')
	}
	out = append(out, k...)
	out = append(out, ':')
	out = append(out, bytes.TrimSpace(raw)...)
	out = append(out, '}')
	return out, nil
}

// MarshalJSON encodes the event; when Raw is set (an unknown event type) it is emitted as is.
func (e Event) MarshalJSON() ([]byte, error) {
	if len(e.Raw) > 0 {
		if !json.Valid(e.Raw) {
			return nil, errors.New("kf: Event.Raw is not valid JSON")
		}
		return e.Raw, nil
	}
	type plain Event
	return json.Marshal(plain(e))
}

// mergedItemWire is a merged_msg item as WeCom sends it.
type mergedItemWire struct {
	SendTime   int64   `json:"send_time"`
	MsgType    MsgType `json:"msgtype"`
	SenderName string  `json:"sender_name,omitempty"`
	MsgContent string  `json:"msg_content"`
}

// UnmarshalJSON decodes a merged_msg item and parses its msg_content JSON string (§4) into Body:
// msg_content is either an object keyed by the msgtype ({"text":{"content":…}}) or the body object
// itself; anything else is kept in Raw (or only in MsgContent when it is not JSON). It fails only
// on malformed JSON.
func (it *MergedMsgItem) UnmarshalJSON(data []byte) error {
	var w mergedItemWire
	if err := json.Unmarshal(data, &w); err != nil && !isTypeError(err) {
		return err
	}
	*it = MergedMsgItem{
		SendTime:   unixTime(w.SendTime),
		MsgType:    w.MsgType,
		SenderName: w.SenderName,
		MsgContent: w.MsgContent,
		Body:       decodeMergedContent(w.MsgType, w.MsgContent),
	}
	return nil
}

func decodeMergedContent(t MsgType, content string) Body {
	raw := bytes.TrimSpace([]byte(content))
	if len(raw) == 0 {
		return Body{}
	}
	if raw[0] == '{' && t != "" {
		// One decode finds the msgtype key and validates the document.
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return Body{} // not JSON: only MsgContent keeps it
		}
		if inner, ok := obj[string(t)]; ok {
			raw = inner
		}
	} else if !json.Valid(raw) {
		return Body{}
	}
	if t.Known() {
		var b Body
		if decodeBody(t, raw, &b) == nil {
			return b
		}
	}
	return Body{Raw: compactRaw(raw)}
}

// compactRaw returns a compact copy of raw, so that a Raw body is the same bytes after a round
// trip through MarshalJSON (which compacts).
func compactRaw(raw []byte) json.RawMessage {
	if raw == nil {
		return nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return buf.Bytes()
}

// MarshalJSON encodes the item as WeCom does. When MsgContent is empty, the body (typed field or
// Raw) is encoded as {"<msgtype>": body} into msg_content.
func (it MergedMsgItem) MarshalJSON() ([]byte, error) {
	w := mergedItemWire{
		SendTime:   unixSeconds(it.SendTime),
		MsgType:    it.MsgType,
		SenderName: it.SenderName,
		MsgContent: it.MsgContent,
	}
	if w.MsgContent == "" && it.MsgType != "" {
		var body []byte
		var err error
		if it.Body.field(it.MsgType) {
			body, err = json.Marshal(it.Body)
		} else if len(it.Raw) > 0 {
			body, err = spliceKey([]byte("{}"), string(it.MsgType), it.Raw)
		}
		if err != nil {
			return nil, err
		}
		w.MsgContent = string(body)
	}
	return json.Marshal(w)
}

// channelsShopProductWire is a channels_shop_product body under either spelling of its fields.
type channelsShopProductWire struct {
	ProductID     string      `json:"product_id"`
	HeadImage     string      `json:"head_image"`
	HeadImg       string      `json:"head_img"`
	Title         string      `json:"title"`
	SalesPrice    decimalText `json:"sales_price"`
	ShopNickname  string      `json:"shop_nickname"`
	ShopHeadImage string      `json:"shop_head_image"`
	ShopHeadImg   string      `json:"shop_head_img"`
}

// UnmarshalJSON decodes a channels_shop_product body with either spelling of the image fields
// (head_image / head_img, shop_head_image / shop_head_img; the first non-empty wins) and a
// sales_price given as a string or a number.
func (p *ChannelsShopProduct) UnmarshalJSON(data []byte) error {
	var w channelsShopProductWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*p = ChannelsShopProduct{
		ProductID:     w.ProductID,
		HeadImage:     cmp.Or(w.HeadImage, w.HeadImg),
		Title:         w.Title,
		SalesPrice:    string(w.SalesPrice),
		ShopNickname:  w.ShopNickname,
		ShopHeadImage: cmp.Or(w.ShopHeadImage, w.ShopHeadImg),
	}
	return nil
}

// decimalText decodes a JSON string or number into its text ("1999" from 1999 or "1999"); null is "".
type decimalText string

func (d *decimalText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = decimalText(s)
	case string(b) == "null":
		*d = ""
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*d = decimalText(b) // a number literal, already validated by the decoder
	default:
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[string]()}
	}
	return nil
}

// intFlag decodes WeCom's 0/1 flags (has_more, is_default); it also accepts true/false.
type intFlag bool

func (f *intFlag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "1", "true":
		*f = true
		return nil
	case "0", "false", "null":
		*f = false
		return nil
	}
	n, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[intFlag]()}
	}
	*f = n != 0
	return nil
}

func (f intFlag) MarshalJSON() ([]byte, error) {
	if f {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}
