package kf

import (
	"context"
	"encoding/json"
)

// sync_msg limits (§4).
const (
	// MaxSyncLimit is the largest (and default) sync_msg page size.
	MaxSyncLimit = 1000
	// MaxCursorBytes is the longest sync_msg cursor.
	MaxCursorBytes = 64
	// MaxSyncTokenBytes is the longest callback token.
	MaxSyncTokenBytes = 128
)

// VoiceFormat selects the encoding of synced voice messages (§4).
const (
	VoiceFormatAMR  = 0 // default
	VoiceFormatSILK = 1
)

// SyncMsgRequest is the body of cgi-bin/kf/sync_msg (§4, doc 94670).
type SyncMsgRequest struct {
	// Cursor is the next_cursor of the previous page; empty on the first call, which starts from
	// the earliest message of the last 3 days. At most 64 bytes.
	Cursor string `json:"cursor,omitempty"`
	// Token is the Token of the latest kf_msg_or_event callback (valid 10 minutes, ≤ 128 bytes).
	// Optional, but without it the call is strictly rate-limited.
	Token string `json:"token,omitempty"`
	// Limit is the page size, 1..1000; 0 means WeCom's default, 1000.
	Limit int `json:"limit,omitempty"`
	// VoiceFormat is VoiceFormatAMR (0, default) or VoiceFormatSILK (1).
	VoiceFormat int `json:"voice_format,omitempty"`
	// OpenKfID is the kf account to pull (required).
	OpenKfID string `json:"open_kfid"`
}

func (r *SyncMsgRequest) validate() error {
	switch {
	case r.OpenKfID == "":
		return invalidf("sync_msg: open_kfid is required")
	case len(r.Cursor) > MaxCursorBytes:
		return invalidf("sync_msg: cursor is %d bytes, max %d", len(r.Cursor), MaxCursorBytes)
	case len(r.Token) > MaxSyncTokenBytes:
		return invalidf("sync_msg: token is %d bytes, max %d", len(r.Token), MaxSyncTokenBytes)
	case r.Limit < 0 || r.Limit > MaxSyncLimit:
		return invalidf("sync_msg: limit %d not in 1..%d (0 for the default)", r.Limit, MaxSyncLimit)
	case r.VoiceFormat != VoiceFormatAMR && r.VoiceFormat != VoiceFormatSILK:
		return invalidf("sync_msg: voice_format %d is neither 0 (AMR) nor 1 (SILK)", r.VoiceFormat)
	}
	return nil
}

// SyncMsgResponse is one sync_msg page (§4). Keep pulling with NextCursor while HasMore, even when
// Messages is empty. Messages sent through send_msg are not returned.
type SyncMsgResponse struct {
	NextCursor string
	HasMore    bool
	Messages   []Message
}

// SyncMsg pulls one page of messages and events of a kf account (cgi-bin/kf/sync_msg, §4). A
// message of an unknown or malformed type never fails the page (see Message). Retried on -1,
// 45033 and network errors.
func (c *Client) SyncMsg(ctx context.Context, req SyncMsgRequest) (*SyncMsgResponse, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if req.Token == "" {
		ctx = PriorityContext(ctx, PriorityBackground) // WeCom limits these strictly: they go last
	}
	var out syncMsgReply
	if err := c.call(ctx, &request{method: methodPost, path: pathSyncMsg, body: &req, retry: retryIdempotent}, &out); err != nil {
		return nil, err
	}
	return &out.resp, nil
}

// syncMsgReply decodes a sync_msg reply in one pass (see decodeSyncMsgPage).
type syncMsgReply struct {
	apiStatus
	resp SyncMsgResponse
}

func (r *syncMsgReply) decodeReply(body []byte) error {
	st, resp, err := decodeSyncMsgPage(body)
	r.apiStatus, r.resp = st, resp
	return err
}

// replyDecoder is implemented by replies that decode themselves from the raw body (once).
type replyDecoder interface {
	statusCarrier
	decodeReply(body []byte) error
}

// syncMsgWire is the sync_msg reply as WeCom encodes it.
type syncMsgWire struct {
	ErrCode    int           `json:"errcode"`
	ErrMsg     string        `json:"errmsg"`
	NextCursor string        `json:"next_cursor"`
	HasMore    intFlag       `json:"has_more"`
	MsgList    []wireMessage `json:"msg_list"`
}

// syncMsgRawWire is the slow path's view: the same envelope with each message kept raw.
type syncMsgRawWire struct {
	ErrCode    int               `json:"errcode"`
	ErrMsg     string            `json:"errmsg"`
	NextCursor string            `json:"next_cursor"`
	HasMore    intFlag           `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

// decodeSyncMsgPage decodes a sync_msg reply. The fast path is a single standard decode of the
// whole page into field-by-field structs. Only when a message needs its raw body (unknown msgtype
// or event type) or did not match its documented shape does a second pass decode the list raw and
// finish those messages one by one; a page fails only when its envelope is malformed.
func decodeSyncMsgPage(body []byte) (apiStatus, SyncMsgResponse, error) {
	var w syncMsgWire
	err := json.Unmarshal(body, &w)
	if err == nil && w.ErrCode != 0 {
		return apiStatus{w.ErrCode, w.ErrMsg}, SyncMsgResponse{}, nil
	}
	var msgs []Message
	repair := err != nil
	if err == nil {
		msgs = make([]Message, len(w.MsgList))
		for i := range w.MsgList {
			msgs[i] = w.MsgList[i].message()
			if msgs[i].needsRepair() {
				repair = true
			}
		}
		if !repair {
			return apiStatus{w.ErrCode, w.ErrMsg},
				SyncMsgResponse{NextCursor: w.NextCursor, HasMore: bool(w.HasMore), Messages: msgs}, nil
		}
	}

	var rw syncMsgRawWire
	if err := json.Unmarshal(body, &rw); err != nil {
		return apiStatus{}, SyncMsgResponse{}, err
	}
	st := apiStatus{rw.ErrCode, rw.ErrMsg}
	if rw.ErrCode != 0 {
		return st, SyncMsgResponse{}, nil
	}
	whole := msgs == nil || len(msgs) != len(rw.MsgList)
	if whole {
		msgs = make([]Message, len(rw.MsgList))
	}
	for i, raw := range rw.MsgList {
		switch {
		case whole:
			if err := msgs[i].UnmarshalJSON(raw); err != nil {
				msgs[i] = Message{Body: Body{Raw: raw}}
			}
		case msgs[i].needsRepair():
			if err := msgs[i].repair(raw, false); err != nil {
				msgs[i] = Message{Body: Body{Raw: raw}}
			}
		}
	}
	return st, SyncMsgResponse{NextCursor: rw.NextCursor, HasMore: bool(rw.HasMore), Messages: msgs}, nil
}

// UnmarshalJSON decodes a sync_msg reply body (errcode and errmsg are ignored; the client checks
// them), with the same tolerance as SyncMsg.
func (r *SyncMsgResponse) UnmarshalJSON(data []byte) error {
	_, resp, err := decodeSyncMsgPage(data)
	if err != nil {
		return err
	}
	*r = resp
	return nil
}

// MarshalJSON encodes the page as WeCom's sync_msg reply, errcode 0 included, so fakes can serve it.
func (r SyncMsgResponse) MarshalJSON() ([]byte, error) {
	msgs := r.Messages
	if msgs == nil {
		msgs = []Message{}
	}
	return json.Marshal(struct {
		ErrCode    int       `json:"errcode"`
		ErrMsg     string    `json:"errmsg"`
		NextCursor string    `json:"next_cursor"`
		HasMore    intFlag   `json:"has_more"`
		MsgList    []Message `json:"msg_list"`
	}{0, "ok", r.NextCursor, intFlag(r.HasMore), msgs})
}
