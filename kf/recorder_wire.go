package kf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"sync"
)

// recorderWire stands in for the few WeCom endpoints a Replier calls (gettoken, send_msg,
// media/upload, service_state/get and trans), in memory, as an http.RoundTripper under the
// Recorder's Client: the Replier runs exactly as it does against WeCom. It keeps the rules the
// Replier relies on (§6, §7): a repeated client msgid is refused as a duplicate, sends are refused
// in states 2, 3 (95018) and 4 (95013) and past 5 (95001), and state changes follow §7's table.
type recorderWire struct {
	mu       sync.Mutex
	sent     []RecordedMessage
	ids      map[string]bool
	media    map[string]recordedMedia
	state    ServiceStateValue
	servicer string
	count    int   // sends since the customer's message
	fail     []int // errcodes for the next send_msg calls
}

type recordedMedia struct {
	filename string
	data     []byte
}

func newRecorderWire() *recorderWire {
	return &recorderWire{ids: map[string]bool{}, media: map[string]recordedMedia{}}
}

func (w *recorderWire) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var answer any
	switch req.URL.Path {
	case pathGetToken:
		answer = map[string]any{"errcode": 0, "errmsg": "ok", "access_token": "recorder", "expires_in": 7200}
	case pathSendMsg:
		answer = w.send(body)
	case pathMediaUpload:
		answer = w.upload(req.Header.Get("Content-Type"), body, req.URL.Query().Get("type"))
	case pathServiceStateGet:
		answer = map[string]any{"errcode": 0, "errmsg": "ok", "service_state": int(w.state), "servicer_userid": w.servicer}
	case pathServiceStateTrans:
		answer = w.trans(body)
	default:
		answer = wireError(404, "recorder: "+req.URL.Path+" is not something a Replier calls")
	}
	b, _ := json.Marshal(answer)
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)), Request: req}, nil
}

func wireError(code int, msg string) map[string]any {
	return map[string]any{"errcode": code, "errmsg": msg}
}

func (w *recorderWire) send(body []byte) any {
	var req struct {
		MsgID   string  `json:"msgid"`
		MsgType MsgType `json:"msgtype"`
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &raw) != nil {
		return wireError(47001, "data format error")
	}
	if len(w.fail) > 0 {
		code := w.fail[0]
		w.fail = w.fail[1:]
		if code != 0 {
			return wireError(code, "recorder: failure injected with FailSends")
		}
	}
	switch {
	case req.MsgID != "" && w.ids[req.MsgID]:
		return wireError(duplicateMsgIDCode, "invalid parameter: msgid duplicated")
	case w.state == ServiceStateQueued || w.state == ServiceStateServicer:
		return wireError(95018, "send msg not allowed in this session state")
	case w.state == ServiceStateEnded:
		return wireError(95013, "session ended")
	case w.count >= quotaPerMessage:
		return wireError(95001, "send msg count limit exceeded")
	}
	rm := RecordedMessage{MsgID: req.MsgID, MsgType: req.MsgType}
	if err := decodeBody(req.MsgType, raw[string(req.MsgType)], &rm.Body); err != nil {
		return wireError(47001, "data format error: "+err.Error())
	}
	if id := mediaIDOf(&rm.Body); id != "" {
		md, ok := w.media[id]
		if !ok {
			return wireError(40007, "invalid media_id")
		}
		rm.Media, rm.Filename = md.data, md.filename
	}
	if req.MsgID != "" {
		w.ids[req.MsgID] = true
	}
	w.count++
	w.sent = append(w.sent, rm)
	return map[string]any{"errcode": 0, "errmsg": "ok", "msgid": req.MsgID}
}

func mediaIDOf(b *Body) string {
	switch {
	case b.Image != nil:
		return b.Image.MediaID
	case b.Voice != nil:
		return b.Voice.MediaID
	case b.Video != nil:
		return b.Video.MediaID
	case b.File != nil:
		return b.File.MediaID
	}
	return ""
}

func (w *recorderWire) upload(contentType string, body []byte, kind string) any {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return wireError(41005, "media data missing")
	}
	part, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).NextPart()
	if err != nil {
		return wireError(41005, "media data missing")
	}
	data, err := io.ReadAll(part)
	if err != nil {
		return wireError(41005, "media data missing")
	}
	id := "recorder-media-" + strconv.Itoa(len(w.media)+1)
	w.media[id] = recordedMedia{filename: part.FileName(), data: data}
	return map[string]any{"errcode": 0, "errmsg": "ok", "type": kind, "media_id": id, "created_at": "0"}
}

// trans applies §7's table: 0→1/2/3, 1→2/3, 2→3, 3→3, 3→4.
func (w *recorderWire) trans(body []byte) any {
	var req TransServiceStateRequest
	if json.Unmarshal(body, &req) != nil {
		return wireError(47001, "data format error")
	}
	from, to := w.state, req.State
	ok := false
	switch from {
	case ServiceStateNew:
		ok = to == ServiceStateAssistant || to == ServiceStateQueued || to == ServiceStateServicer
	case ServiceStateAssistant:
		ok = to == ServiceStateQueued || to == ServiceStateServicer
	case ServiceStateQueued:
		ok = to == ServiceStateServicer
	case ServiceStateServicer:
		ok = to == ServiceStateServicer || to == ServiceStateEnded
	}
	if !ok {
		return wireError(95016, fmt.Sprintf("state transition %d→%d not allowed", from, to))
	}
	w.state, w.servicer = to, req.ServicerUserID
	return map[string]any{"errcode": 0, "errmsg": "ok"}
}
