package crypto

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Callback event names (doc 94670, 96238).
const (
	// EventKfMsgOrEvent says new messages or events wait in sync_msg for OpenKfID; Token is
	// passed to sync_msg and is valid for 10 minutes.
	EventKfMsgOrEvent = "kf_msg_or_event"
	// EventKfAccountAuthChange says customer-service accounts were authorised or revoked.
	EventKfAccountAuthChange = "kf_account_auth_change"
)

// MaxEventBytes caps the decrypted callback ParseEvent accepts; WeCom's are a few hundred bytes.
const MaxEventBytes = 64 << 10

// Event is the typed part of a decrypted callback (the XML DecryptMessage returns). The kf
// callback carries no message content: a kf_msg_or_event only says which account to sync and
// gives the token to do it with. Raw keeps the whole XML for events not modelled here.
type Event struct {
	ToUserName string // the corp id
	CreateTime int64  // unix seconds
	MsgType    string // "event" for kf callbacks
	Event      string // e.g. EventKfMsgOrEvent, EventKfAccountAuthChange
	Token      string // sync_msg token (kf_msg_or_event), valid 10 minutes
	OpenKfID   string // the customer-service account (kf_msg_or_event)
	// AuthAddOpenKfID and AuthDelOpenKfID list accounts whose API authorisation was granted or
	// revoked (kf_account_auth_change).
	AuthAddOpenKfID []string
	AuthDelOpenKfID []string
	Raw             []byte // the decrypted XML as given
}

type eventXML struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName string   `xml:"ToUserName"`
	CreateTime int64    `xml:"CreateTime"`
	MsgType    string   `xml:"MsgType"`
	Event      string   `xml:"Event"`
	Token      string   `xml:"Token"`
	OpenKfID   string   `xml:"OpenKfId"`
	AuthAdd    []string `xml:"AuthAddOpenKfId>OpenKfId"`
	AuthDel    []string `xml:"AuthDelOpenKfId>OpenKfId"`
}

// ParseEvent decodes a decrypted callback into an Event. It fails with an error matching
// ErrMalformed for input that is not an <xml> document, is larger than MaxEventBytes, or is a
// kf_msg_or_event without OpenKfId.
func ParseEvent(inner []byte) (*Event, error) {
	if len(inner) > MaxEventBytes {
		return nil, newErr(ErrMalformed, CodeParseXML, fmt.Sprintf("callback larger than %d bytes", MaxEventBytes))
	}
	if e, ok := parseFlatEvent(inner); ok {
		return e, nil
	}
	return parseEventXML(inner)
}

// parseFlatEvent is the fast path for kf_msg_or_event, the callback every message causes: a flat
// <xml> of plain or CDATA values, read with the envelope scanner instead of encoding/xml (which
// costs about ten times the time and allocations). Anything else — other events, entities,
// comments, a field given twice — reports false and goes to encoding/xml.
func parseFlatEvent(inner []byte) (*Event, bool) {
	if bytes.IndexByte(inner, '&') >= 0 || bytes.Contains(inner, []byte("<!--")) || bytes.Contains(inner, []byte("<!DOCTYPE")) {
		return nil, false
	}
	field := func(name string) (string, bool) {
		if !bytes.Contains(inner, []byte("<"+name+">")) {
			return "", true
		}
		v, ok := envelopeField(inner, name)
		return string(bytes.TrimSpace(v)), ok
	}
	ev, ok := field("Event")
	if !ok || ev != EventKfMsgOrEvent {
		return nil, false
	}
	e := &Event{Event: ev, Raw: inner}
	var ct string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"ToUserName", &e.ToUserName}, {"MsgType", &e.MsgType}, {"Token", &e.Token}, {"OpenKfId", &e.OpenKfID}, {"CreateTime", &ct}} {
		if *f.dst, ok = field(f.name); !ok {
			return nil, false
		}
	}
	if ct != "" {
		n, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return nil, false
		}
		e.CreateTime = n
	}
	if e.OpenKfID == "" {
		return nil, false // let the full parser report it
	}
	return e, true
}

func parseEventXML(inner []byte) (*Event, error) {
	var x eventXML
	if err := xml.Unmarshal(inner, &x); err != nil {
		return nil, newErr(ErrMalformed, CodeParseXML, "callback XML: "+err.Error())
	}
	e := &Event{
		ToUserName:      strings.TrimSpace(x.ToUserName),
		CreateTime:      x.CreateTime,
		MsgType:         strings.TrimSpace(x.MsgType),
		Event:           strings.TrimSpace(x.Event),
		Token:           strings.TrimSpace(x.Token),
		OpenKfID:        strings.TrimSpace(x.OpenKfID),
		AuthAddOpenKfID: x.AuthAdd,
		AuthDelOpenKfID: x.AuthDel,
		Raw:             inner,
	}
	if e.Event == EventKfMsgOrEvent && e.OpenKfID == "" {
		return nil, newErr(ErrMalformed, CodeParseXML, "kf_msg_or_event without OpenKfId")
	}
	return e, nil
}
