package kf

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/wxkf/wxkf/cursor"
)

// The outbox: a reply is written down before its first send.
//
// A handler may run more than once for one message: after a transient failure, after a crash, or
// on another replica after a failover. A language model answers differently every time, so a
// rerun must not send its own parts after the customer already got some of the first answer's.
// Every Replier call is therefore recorded, with all the messages it will send (their client
// msgids and bodies), in the store (cursor.Lease.PutReply) before the first of them is sent, and
// each send that WeCom accepts is marked in the record. The record is deleted when the message is
// marked done.
//
// A rerun replays the record call by call instead of sending anew: the n-th Replier call of the
// rerun sends what is still unsent of the n-th recorded call, whatever the rerun passed it. The
// record keeps a hash of each call's input; once a rerun's call differs from the recorded one, the
// rerun has diverged (a different answer), and its calls beyond the recorded ones are not sent:
// they return ErrReplySuperseded and are counted in Stats.RepliesSuperseded. A rerun that makes
// the same calls (a deterministic bot) simply continues where the first run stopped.

// replyRecord is the outbox record of one incoming message.
type replyRecord struct {
	Calls []replyCall `json:"c"`
	// Covers lists the msgids of a burst the reply answers (WithBurstWindow), first to last; the
	// record is kept under the first. A rerun answers the same burst.
	Covers []string `json:"v,omitempty"`

	unreadable bool // the stored record could not be decoded: send nothing
}

// replyCall is one Replier call and the messages it sends.
type replyCall struct {
	Kind  string      `json:"k"`
	Hash  string      `json:"h"`
	Parts []replyPart `json:"p"`
}

// replyPart is one send_msg: its client msgid and body, and whether WeCom accepted it.
type replyPart struct {
	ID   string          `json:"i"`
	Type MsgType         `json:"t"`
	Body json.RawMessage `json:"b"`
	Sent bool            `json:"s,omitempty"`

	// fresh: recorded by this process and not attempted yet. A first attempt that WeCom refuses as a
	// repeated msgid means an earlier run sent something under this msgid that the record did not
	// keep (a power loss took it): its content is unknown, so the rest of this answer is not sent.
	fresh bool
}

func decodeReplyRecord(b []byte) (*replyRecord, error) {
	rec := new(replyRecord)
	if len(b) == 0 {
		return rec, nil
	}
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("kf: reply record: %w", err)
	}
	for _, c := range rec.Calls {
		for _, p := range c.Parts {
			if checkMsgID(p.ID) != nil || p.ID == "" || p.Type == "" || !json.Valid(p.Body) {
				return nil, errors.New("kf: reply record: malformed part")
			}
		}
	}
	return rec, nil
}

func (r *replyRecord) encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if len(b) > cursor.MaxReplyLen {
		return nil, fmt.Errorf("%w: the reply record is %d bytes, over the store's %d", ErrInvalidArgument, len(b), cursor.MaxReplyLen)
	}
	return b, nil
}

// parts returns how many messages the record holds (the next send index).
func (r *replyRecord) parts() int {
	n := 0
	for _, c := range r.Calls {
		n += len(c.Parts)
	}
	return n
}

// rawContent is a recorded body sent again as it was.
type rawContent struct {
	t    MsgType
	body json.RawMessage
}

func (c rawContent) MsgType() MsgType      { return c.t }
func (c rawContent) payload() (any, error) { return c.body, nil }

// recordPart encodes content as a record part with client msgid id.
func recordPart(id string, c Content) (replyPart, error) {
	t, p, err := contentPayload(c)
	if err != nil {
		return replyPart{}, err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return replyPart{}, err
	}
	return replyPart{ID: id, Type: t, Body: body}, nil
}

// callHash identifies a Replier call's input, to tell a rerun that makes the same calls from one
// that answers differently.
func callHash(kind string, inputs ...[]byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, in := range inputs {
		var n [20]byte
		h.Write(strconv.AppendInt(n[:0], int64(len(in)), 10))
		h.Write([]byte{0})
		h.Write(in)
	}
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(h.Sum(sum[:0])[:12])
}

// clientMsgID derives the send_msg msgid of the index-th message answering incoming: ≤ 32 bytes of
// [0-9a-zA-Z_-] (§6), different for every (account, message, index). It is written into the reply
// record before the send, so a rerun sends the same message with the same msgid, and WeCom refuses
// it as a duplicate if the first one got through.
func clientMsgID(openKfID, incoming string, index int) string {
	h := sha256.New()
	h.Write([]byte(openKfID))
	h.Write([]byte{0})
	h.Write([]byte(incoming))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var b [32]byte
	base64.RawURLEncoding.Encode(b[:24], sum[:18]) // 144 bits
	b[24] = '_'
	return string(strconv.AppendInt(b[:25], int64(index), 10))
}

// ErrReplySuperseded is returned by a Replier call that was not sent because an earlier run of the
// handler for the same message already answered differently (a rerun after a failure, a crash or a
// failover): the customer gets the first answer, completed as it was recorded, and never parts of
// two. A handler may return it; the message then counts as answered.
var ErrReplySuperseded = errors.New("kf: reply superseded by an earlier run's answer to this message")
