package kftest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
)

type syncReq struct {
	Cursor      string `json:"cursor"`
	Token       string `json:"token"`
	Limit       *int   `json:"limit"`
	VoiceFormat *int   `json:"voice_format"`
	OpenKfID    string `json:"open_kfid"`
}

type syncResp struct {
	okBody
	NextCursor string            `json:"next_cursor"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

// encode writes the answer directly: the items are stored as compact JSON already, and going through
// json.Marshal would re-validate and re-compact every one of them.
func (r *syncResp) encode() []byte {
	n := 96 + len(r.NextCursor)
	for _, m := range r.MsgList {
		n += len(m) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"errcode":0,"errmsg":"ok","next_cursor":"`...)
	b = append(b, r.NextCursor...) // base64url: nothing to escape
	b = append(b, `","has_more":`...)
	b = strconv.AppendInt(b, int64(r.HasMore), 10)
	b = append(b, `,"msg_list":[`...)
	for i, m := range r.MsgList {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	return append(b, "]}"...)
}

// MaxCursorBytes is the longest cursor sync_msg accepts (§4).
const MaxCursorBytes = 64

// handleSyncMsg is POST /cgi-bin/kf/sync_msg (§4, doc 94670):
//   - open_kfid required (95004), known (95000);
//   - token optional; when given it must be a callback Token this account issued ≤ 10 min ago (95007);
//   - limit 1..1000, absent/0 = 1000, else 40058; the page also never exceeds the page size;
//   - voice_format 0 or 1, else 40058;
//   - no cursor: from the earliest stored message of the last 3 days (older ones never returned);
//     cursor: opaque, HMAC-protected, bound to the account; anything else (forged, another account's,
//     > 64 bytes) → 40058;
//   - has_more 1 while messages remain after the page; next_cursor always set;
//   - messages sent with send_msg are never returned (they are not stored here).
func (s *Server) handleSyncMsg(c *call) result {
	var req syncReq
	if e := c.decode(&req); e != nil {
		return failErr(e)
	}
	if req.OpenKfID == "" {
		return fail(CodeMissingOpenKfID, "open_kfid missing")
	}
	limit := MaxPageSize
	if req.Limit != nil && *req.Limit != 0 {
		if *req.Limit < 0 || *req.Limit > MaxPageSize {
			return fail(CodeInvalidParameter, "invalid parameter: limit must be 1..1000")
		}
		limit = *req.Limit
	}
	if req.VoiceFormat != nil && *req.VoiceFormat != 0 && *req.VoiceFormat != 1 {
		return fail(CodeInvalidParameter, "invalid parameter: voice_format must be 0 or 1")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	acc := s.accounts[req.OpenKfID]
	if acc == nil {
		return fail(CodeInvalidOpenKfID, "invalid open_kfid")
	}
	if req.Token != "" {
		exp, ok := acc.syncToks[req.Token]
		if !ok || !c.now.Before(exp) {
			return fail(CodeInvalidMsgToken, "invalid msg token")
		}
	}
	limit = min(limit, s.pageSize)

	var pos int
	var cutoff int64
	if req.Cursor == "" {
		cutoff = c.now.Add(-HistoryWindow).Unix()
	} else {
		var ok bool
		pos, cutoff, ok = s.parseCursor(acc, req.Cursor)
		if !ok {
			return fail(CodeInvalidParameter, "invalid parameter: invalid cursor")
		}
	}

	resp := syncResp{okBody: okay(), MsgList: []json.RawMessage{}}
	if pos < len(acc.msgs) && s.chanceLocked(s.faults.EmptyPageRate, "/cgi-bin/kf/sync_msg") {
		resp.HasMore = 1
		resp.NextCursor = s.makeCursor(acc, pos, cutoff)
		return result{raw: resp.encode()}
	}
	for pos < len(acc.msgs) && len(resp.MsgList) < limit {
		m := acc.msgs[pos]
		pos++
		if m.sendTime.Unix() < cutoff {
			continue
		}
		resp.MsgList = append(resp.MsgList, m.raw)
	}
	// Skip messages below the cutoff so that has_more is 0 when nothing returnable remains.
	for pos < len(acc.msgs) && acc.msgs[pos].sendTime.Unix() < cutoff {
		pos++
	}
	if pos < len(acc.msgs) {
		resp.HasMore = 1
	}
	resp.NextCursor = s.makeCursor(acc, pos, cutoff)
	return result{raw: resp.encode()}
}

// chanceLocked is chance for a fault limited by Faults.Paths; s.mu held.
func (s *Server) chanceLocked(p float64, path string) bool {
	if p <= 0 || !s.faults.applies(path) {
		return false
	}
	return s.chance(p)
}

// Cursor layout (before base64url): version(1) | position(8) | cutoff unix(8) | HMAC-SHA256(key,
// open_kfid | first 17 bytes)[:12]. Opaque to clients, unforgeable, bound to the account.
const cursorVersion = 1

func (s *Server) makeCursor(acc *account, pos int, cutoff int64) string {
	b := make([]byte, 17, 29)
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(pos))
	binary.BigEndian.PutUint64(b[9:], uint64(cutoff))
	b = append(b, s.cursorMAC(acc.openKfID, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) cursorMAC(openKfID string, payload []byte) []byte {
	h := hmac.New(sha256.New, s.cursorKey)
	h.Write([]byte(openKfID))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:12]
}

func (s *Server) parseCursor(acc *account, cur string) (pos int, cutoff int64, ok bool) {
	if len(cur) > MaxCursorBytes {
		return 0, 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil || len(b) != 29 || b[0] != cursorVersion {
		return 0, 0, false
	}
	if !hmac.Equal(b[17:], s.cursorMAC(acc.openKfID, b[:17])) {
		return 0, 0, false
	}
	p := binary.BigEndian.Uint64(b[1:])
	if p > uint64(len(acc.msgs)) {
		return 0, 0, false
	}
	return int(p), int64(binary.BigEndian.Uint64(b[9:])), true
}

// issueSyncTokenLocked makes a fresh callback Token for sync_msg on acc (valid 10 min, ≤ 128 bytes).
func (s *Server) issueSyncTokenLocked(acc *account) string {
	now := s.now()
	for t, exp := range acc.syncToks { // keep the map small
		if !now.Before(exp) {
			delete(acc.syncToks, t)
		}
	}
	tok := "ENC" + s.randString(44, alnum)
	acc.syncToks[tok] = now.Add(SyncTokenTTL)
	return tok
}

// IssueSyncToken returns a fresh callback Token for openKfID's sync_msg, as a callback would carry.
func (s *Server) IssueSyncToken(openKfID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueSyncTokenLocked(s.mustAccountLocked(openKfID))
}

// Messages returns how many messages are stored for sync_msg on openKfID.
func (s *Server) Messages(openKfID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mustAccountLocked(openKfID).msgs)
}
