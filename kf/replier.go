package kf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/media"
)

// Replier sends replies to the customer of the message being handled, within WeCom's rules, and so
// that the customer never gets a reply twice nor parts of two different answers.
//
// Each call (Text, Image, ...) is written down with every message it will send before the first
// send (the reply record), and every message carries a client msgid derived from the incoming
// message. When the handler runs again for the same message (a retry, a replay after a crash, a
// failover to another replica), each call sends what is still unsent of the recorded one, with the
// same msgids, instead of its own input: WeCom refuses a repeated msgid, which counts as sent, so
// nothing reaches the customer twice, and an answer cut short is completed as it was first written.
// A rerun that answers differently (as a language model does) gets ErrReplySuperseded for its calls
// beyond the recorded ones.
//
// The Replier keeps WeCom's rules (§6): at most 5 messages after the customer's latest message
// (a reply that needs more is fitted into what is left, and a *ReplyError says what was
// dropped), nothing after 48 h, and nothing while a human servicer has the session (state 3) or
// it is queued or ended (a *ReplyError with ErrHumanServicer, ErrSessionQueued or
// ErrSessionEnded). A send that fails transiently (WeCom busy, network) makes the Channel run
// the handler again later, even if the handler ignores the error. A Replier is used by one
// handler call; it is not safe for concurrent use.
type Replier interface {
	// Text sends s, split at 2048 bytes on UTF-8 and grapheme boundaries (preferring paragraph,
	// line, sentence and word ends), in at most QuotaLeft messages: a longer text is cut and
	// ends with the truncation marker.
	Text(ctx context.Context, s string) error
	// Image sends an image: JPEG, PNG, GIF, WebP, BMP or TIFF, fitted to a JPEG/PNG ≤ 10 MB.
	Image(ctx context.Context, data []byte) error
	// ImageURL downloads an image and sends it as Image. The download has its own timeout
	// (WithFetchTimeout) and, with the default fetch client, refuses loopback, private and
	// link-local addresses (WithFetchPrivateAddresses), since URLs often come from customers or a
	// language model.
	ImageURL(ctx context.Context, url string) error
	// Voice sends audio as AMR voice messages ≤ 60 s and ≤ 2 MB each: AMR is split as is; WAV,
	// MP3 and (with ffmpeg) other formats need the Channel's AMR encoder (WithAMREncoder).
	Voice(ctx context.Context, data []byte) error
	// Video sends an MP4 of at most 10 MB.
	Video(ctx context.Context, data []byte) error
	// File sends a file of at most 20 MB under filename.
	File(ctx context.Context, filename string, data []byte) error
	// Link sends a link card (NewLink).
	Link(ctx context.Context, l *Link) error
	// Menu sends a msgmenu (NewMenu): at most 10 items.
	Menu(ctx context.Context, m *Menu) error
	// Location sends a location (NewLocation).
	Location(ctx context.Context, l *Location) error
	// Send sends any Content as one message.
	Send(ctx context.Context, c Content) error
	// Stream sends a text that arrives in pieces (a language model's answer) while it arrives:
	// each finished paragraph goes out as soon as it is long enough to be worth a message, or a
	// full 2048-byte message when more than that is waiting, but only while more than one message
	// of the quota is left. The last one is kept for the remainder, which is sent when deltas ends
	// and cut with the truncation marker if it needs more (a *ReplyError then says so). No cut
	// falls inside a grapheme cluster. A rerun replays what an earlier run streamed, and once its
	// text differs from that run's, sends no part of its own (ErrReplySuperseded): the customer
	// never gets parts of two answers.
	//
	// A delta with a non-nil error ends the stream: what was sent stays sent, the rest is dropped,
	// and Stream returns a *StreamError (the kept message is then free for an apology). Stream
	// stops reading deltas when a send fails or the quota cannot carry more text, as range-over-func
	// allows. See StreamError for the details.
	Stream(ctx context.Context, deltas iter.Seq2[string, error]) error
	// QuotaLeft is how many more messages this customer may get before writing again (0..5).
	QuotaLeft() int
	// Ready reports, without sending, whether a reply could go out now: nil, or the *ReplyError a
	// send would return (human servicer, queued, ended, 48 h passed, quota used). It asks
	// service_state/get when the session state is not known. A bot can check it before expensive
	// work, such as asking a language model.
	Ready(ctx context.Context) error
	// Handoff transfers the session (转人工): to servicerUserID (state 3), or to the queue (state 2)
	// when it is empty. The bot stays quiet until the session comes back.
	Handoff(ctx context.Context, servicerUserID string) error
}

// Reasons a ReplyError gives besides WeCom's own codes. ReplyError.Reason is one of ErrQuotaExceeded
// (95001: the 5 messages after the customer's latest message are used), ErrSessionExpired (95002:
// the customer's latest message is older than 48 h), ErrSessionEnded (95013), or one of these, which
// say more precisely why WeCom's 95018 (ErrStateForbidsSend) applies; each also matches
// ErrStateForbidsSend with errors.Is.
var (
	// ErrHumanServicer: a human servicer has the session (state 3); the bot stays quiet.
	ErrHumanServicer error = &replyReason{"session is with a human servicer", 95018}
	// ErrSessionQueued: the session waits for a human servicer (state 2).
	ErrSessionQueued error = &replyReason{"session is queued for a human servicer", 95018}
)

type replyReason struct {
	msg  string
	code int
}

func (r *replyReason) Error() string { return "kf: " + r.msg }

// Is matches the API error of the same code, so errors.Is(err, ErrQuotaExceeded) holds for a
// reply the quota stopped locally as well as for a 95001 from WeCom.
func (r *replyReason) Is(target error) bool {
	var api *APIError
	return errors.As(target, &api) && api.Code == r.code
}

// ReplyError says what a Replier call could not send and why. It matches its Reason with
// errors.Is (and, through it, the WeCom code), and wraps the API error behind it, if any.
type ReplyError struct {
	Reason       error // ErrQuotaExceeded, ErrSessionExpired, ErrSessionEnded, ErrHumanServicer or ErrSessionQueued
	Sent         int   // messages of this call WeCom accepted
	Dropped      int   // messages of this call not sent
	DroppedBytes int   // Text: bytes of the text not sent (cut to fit the quota)
	Err          error // the API error that revealed the reason, if any
}

// Error says why the reply was cut and how many messages were sent and dropped.
func (e *ReplyError) Error() string {
	reason := fmt.Sprint(e.Reason)
	var ae *APIError
	if errors.As(e.Reason, &ae) && ae.Msg == "" && ae.Path == "" && ae.Description() != "" {
		reason = "kf: " + ae.Description() // a sentinel: say what it means
	}
	s := fmt.Sprintf("%s: sent %d, dropped %d", reason, e.Sent, e.Dropped)
	if e.DroppedBytes > 0 {
		s += fmt.Sprintf(" (%d bytes of text)", e.DroppedBytes)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns Reason and, when set, Err, so errors.Is matches either.
func (e *ReplyError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// duplicateMsgIDCode is the errcode with which send_msg (and send_msg_on_event) is assumed to
// refuse a client msgid already used in the account. WeCom documents that a repeated msgid fails
// (§6) but not how, and 40058 is its generic invalid-parameter code: so a 40058 counts as "already
// accepted" only when its errmsg names the msgid as a duplicate (isDuplicateMsgID). Any other 40058
// is a failure, reported with WeCom's errmsg.
const duplicateMsgIDCode = 40058

// isDuplicateMsgID reports whether err is WeCom refusing a send because its client msgid was
// already used: errcode 40058 with an errmsg that names the msgid and says it is taken.
func isDuplicateMsgID(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != duplicateMsgIDCode {
		return false
	}
	msg := strings.ToLower(ae.Msg)
	if !strings.Contains(msg, "msgid") && !strings.Contains(msg, "msg_id") {
		return false
	}
	for _, w := range []string{"dup", "exist", "repeat", "already", "used", "重复", "已存在", "已使用"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// noteDuplicate counts a send refused as a repeat and logs WeCom's wording the first time, with
// attrs (open_kfid and msgid of the message answered).
func (ch *Channel) noteDuplicate(err error, attrs ...any) {
	ch.stats.duplicateSends.Add(1)
	ch.dupWording.Do(func() {
		var ae *APIError
		errors.As(err, &ae)
		ch.log.Info("wxkf: WeCom refused a repeated client msgid (counted as already sent)",
			append(attrs, "path", ae.Path, "errcode", ae.Code, "errmsg", ae.Msg)...)
	})
}

// replier is the Replier of one handler run. Every call goes through the message's reply record
// (see outbox.go).
type replier struct {
	ch       *Channel
	s        *session
	it       *item
	m        *Message // the message answered (the last of a burst)
	recKey   string   // the msgid the reply record and client msgids derive from (the first of a burst)
	openKfID string
	user     string
	key      string
	rec      *replyRecord
	call     int   // index of the next Replier call in the record
	diverged bool  // this run's calls differ from the recorded ones
	failure  error // the first transient send failure of this run (retried even if the handler swallows it)
	checked  bool
}

func (ch *Channel) newReplier(it *item, s *session, m *Message) *replier {
	u := customerOf(m)
	r := &replier{ch: ch, s: s, it: it, m: m, recKey: it.m.MsgID, openKfID: m.OpenKfID, user: u,
		key: customerKey(m.OpenKfID, u), rec: it.rec}
	// What an earlier run sent counts against the quota in this process too (a new process after a
	// crash has not seen those sends): when they were sent cannot be told, so they count against
	// the customer's newest window, as any send of unknown order does.
	for _, c := range it.rec.Calls {
		for _, p := range c.Parts {
			if p.Sent {
				ch.quota.take(r.key, p.ID)
			}
		}
	}
	return r
}

func (r *replier) QuotaLeft() int { return r.ch.quota.left(r.key) }

// errLeaseLost is what a send returns once the replica lost the account's lease: another replica
// owns the message now.
var errLeaseLost = fmt.Errorf("kf: not sent: %w (another replica handles this account now)", cursor.ErrLeaseLost)

// ready checks what forbids sending before any upload: no customer, the session state, the 48 h
// window.
func (r *replier) ready(ctx context.Context) error {
	if r.user == "" {
		return fmt.Errorf("%w: this message has no customer to reply to", ErrInvalidArgument)
	}
	return r.readyState(ctx, r.ch.cfg.checkState)
}

// readyState checks the session state and the 48 h window. The state comes from the cache
// (session_status_change events, Handoff, earlier 95018 answers), but the cache is trusted only
// for messages older than what it learned: a customer message that arrived after the evidence
// gets a fresh look (service_state/get), so a session that came back to the bot without an event
// is never answered with silence. With query the state is also asked when the cache has none.
func (r *replier) readyState(ctx context.Context, query bool) error {
	if err := r.checkState(ctx, query); err != nil {
		return err
	}
	if r.ch.quota.expired(r.key) {
		return &ReplyError{Reason: ErrSessionExpired}
	}
	return nil
}

func (r *replier) checkState(ctx context.Context, query bool) error {
	st, at, ok := r.ch.states.get(r.key, r.ch.now())
	if ok && stateReason(st) != nil && !r.m.SendTime.Before(at.Truncate(time.Second)) {
		ok, query = false, true // the evidence is not newer than this message: look again
	}
	if !ok && query && !r.checked {
		s, err := r.ch.client.GetServiceState(ctx, r.openKfID, r.user)
		if err != nil {
			// Unknown state: let WeCom decide (a 95018 is still turned into a ReplyError).
			r.ch.noteErr("service_state/get", err, "open_kfid", r.openKfID)
			r.checked = true
			return nil
		}
		st, ok = s.State, true
		r.ch.states.put(r.key, st, r.ch.now())
	}
	r.checked = true
	if !ok {
		return nil
	}
	if reason := stateReason(st); reason != nil {
		return &ReplyError{Reason: reason}
	}
	return nil
}

func stateReason(st ServiceStateValue) error {
	switch st {
	case ServiceStateServicer:
		return ErrHumanServicer
	case ServiceStateQueued:
		return ErrSessionQueued
	case ServiceStateEnded:
		return ErrSessionEnded
	}
	return nil
}

// refused95018 tells what a 95018 means (§6, global error codes: the session state forbids sending,
// or the session is older than 48 h) by asking service_state/get once.
func (r *replier) refused95018(ctx context.Context, err error) error {
	s, gerr := r.ch.client.GetServiceState(ctx, r.openKfID, r.user)
	if gerr != nil {
		r.ch.noteErr("service_state/get", gerr, "open_kfid", r.openKfID)
		return &ReplyError{Reason: ErrHumanServicer, Dropped: 1, Err: err} // the likelier meaning; not cached
	}
	r.ch.states.put(r.key, s.State, r.ch.now())
	if reason := stateReason(s.State); reason != nil {
		return &ReplyError{Reason: reason, Dropped: 1, Err: err}
	}
	return &ReplyError{Reason: ErrSessionExpired, Dropped: 1, Err: err} // the bot has the session: 48 h passed
}

// reply runs one Replier call through the reply record. build makes the call's messages
// (uploading media as needed) given the quota left; it runs only when the call is not in the
// record yet. Replier methods call it through do, which counts what the quota dropped.
func (r *replier) reply(ctx context.Context, kind, hash string, build func(ctx context.Context, left int) ([]Content, *ReplyError, error)) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	if r.rec.unreadable {
		return ErrReplySuperseded
	}
	idx := r.call
	r.call++
	if idx < len(r.rec.Calls) {
		if r.rec.Calls[idx].Hash != hash {
			r.diverged = true
		}
		return r.sendRecorded(ctx, idx)
	}
	if r.diverged {
		r.ch.stats.superseded.Add(1)
		r.ch.log.Warn("wxkf: a rerun answered differently; its further reply is dropped so the customer "+
			"never gets parts of two answers (the earlier answer may have been cut short)",
			"open_kfid", r.openKfID, "msgid", r.recKey)
		return ErrReplySuperseded
	}
	r.call = idx // a new call takes its index only once it is recorded
	contents, cut, err := build(ctx, r.QuotaLeft())
	if err != nil {
		return err
	}
	if len(contents) == 0 {
		if cut != nil {
			return cut
		}
		return nil
	}
	call := replyCall{Kind: kind, Hash: hash, Parts: make([]replyPart, len(contents))}
	next := r.rec.parts()
	for i, c := range contents {
		p, err := recordPart(clientMsgID(r.openKfID, r.recKey, next+i), c)
		if err != nil {
			return err
		}
		p.fresh = true
		call.Parts[i] = p
	}
	r.rec.Calls = append(r.rec.Calls, call)
	if len(r.rec.Covers) == 0 && len(r.m.Burst) > 1 {
		for _, bm := range r.m.Burst {
			r.rec.Covers = append(r.rec.Covers, bm.MsgID) // a rerun answers the same burst
		}
	}
	// The call is recorded before its first send, so that a rerun completes it rather than send
	// its own answer.
	if err := r.persist(ctx); err != nil {
		r.rec.Calls = r.rec.Calls[:idx]
		return err
	}
	r.call++
	if err := r.sendRecorded(ctx, idx); err != nil {
		var re *ReplyError
		if cut != nil && errors.As(err, &re) {
			re.Dropped += cut.Dropped
			re.DroppedBytes += cut.DroppedBytes
		}
		return err
	}
	if cut != nil {
		cut.Sent = len(contents)
		return cut
	}
	return nil
}

// persist writes the record through the lease, before a send and after each accepted one.
func (r *replier) persist(ctx context.Context) error {
	b, err := r.rec.encode()
	if err != nil {
		return err
	}
	if err := r.s.lease.PutReply(ctx, r.recKey, b); err != nil {
		if errors.Is(err, cursor.ErrLeaseLost) || errors.Is(err, cursor.ErrReleased) {
			r.s.lost()
			r.failure = errLeaseLost
			return errLeaseLost
		}
		r.ch.noteErr("reply record", err, "open_kfid", r.openKfID, "msgid", r.recKey)
		if r.failure == nil {
			r.failure = Retry(err) // a store outage: run again later
		}
		return err
	}
	return nil
}

// sendRecorded sends the parts of recorded call idx that WeCom has not accepted yet.
func (r *replier) sendRecorded(ctx context.Context, idx int) error {
	c := &r.rec.Calls[idx]
	total := len(c.Parts)
	sent := 0
	for i := range c.Parts {
		p := &c.Parts[i]
		if p.Sent {
			sent++
			continue
		}
		unknown := p.fresh
		p.fresh = false
		err := r.send(ctx, p, unknown)
		if err == errUnknownEarlierReply {
			p.Sent = true // something went out under this msgid; it cannot be sent again
			r.diverged = true
			r.ch.stats.superseded.Add(1)
			r.ch.log.Warn("wxkf: an earlier run's reply was sent but not recorded (a power loss?); "+
				"this run's answer is not sent after it", "open_kfid", r.openKfID, "msgid", r.recKey)
			_ = r.persist(ctx)
			return ErrReplySuperseded
		}
		if err != nil {
			var re *ReplyError
			if errors.As(err, &re) {
				re.Sent, re.Dropped = sent, total-sent
			}
			return err
		}
		sent++
		p.Sent = true
		if i == total-1 {
			// The call's last message: its mark rides on the next call's record, or the done mark
			// ends the record. A rerun in between sends it again, and WeCom refuses the repeat
			// (which counts as sent): one store write per reply saved.
			break
		}
		if err := r.persist(ctx); err != nil && errors.Is(err, cursor.ErrLeaseLost) {
			return err
		}
		// Another store error here loses only the mark: a rerun sends the part again, and WeCom
		// refuses the repeated msgid (which counts as sent).
	}
	return nil
}

// errUnknownEarlierReply: WeCom refused a part as a repeated msgid on the first HTTP attempt this run
// made at it, though this run recorded it: an earlier run sent something under that msgid that no
// record kept (the record was lost: a power loss on the file store). When the refusal answers a
// retried attempt of the same call instead, the first attempt most likely went through and its
// answer was lost, so the part counts as sent with this run's body; only a lost record together with
// a failed first attempt on that very part could make that wrong.
var errUnknownEarlierReply = errors.New("kf: an unrecorded earlier reply")

// send sends one recorded part, counting it against the quota. The lease is checked first: a
// replica that lost the account sends nothing more. first: this run recorded the part and never
// attempted it (see errUnknownEarlierReply).
func (r *replier) send(ctx context.Context, p *replyPart, first bool) error {
	if !r.s.valid() {
		r.failure = errLeaseLost
		return errLeaseLost
	}
	if !r.ch.quota.take(r.key, p.ID) {
		return &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}
	}
	ctx = withCallGuard(ctx, r.leaseGuard) // checked again after the rate limiter's wait
	var attempts atomic.Int32
	ctx = context.WithValue(ctx, attemptsKey{}, &attempts)
	start := time.Now()
	_, err := r.ch.client.SendMsg(ctx, SendMsgRequest{ToUser: r.user, OpenKfID: r.openKfID, MsgID: p.ID, Content: rawContent{p.Type, p.Body}})
	r.ch.noteSend(ctx, r.openKfID, p.Type, start, err)
	switch {
	case err == nil:
		r.ch.stats.replies.Add(1)
		return nil
	case isDuplicateMsgID(err):
		r.ch.noteDuplicate(err, "open_kfid", r.openKfID, "msgid", r.recKey) // accepted before: already with the customer
		if first && attempts.Load() <= 1 {
			return errUnknownEarlierReply
		}
		// Not this run's first attempt at the part, or an earlier attempt of this very call got no
		// answer (a network blip after WeCom took it): the part went out with this run's body.
		return nil
	}
	r.ch.noteErr("send_msg", err, "open_kfid", r.openKfID, "msgid", r.recKey)
	var req *RequestError
	var he *HTTPError
	if !errors.As(err, &req) && !errors.As(err, &he) || notSent(err) {
		r.ch.quota.release(r.key, p.ID) // refused: it did not count. (After a network or gateway error it may have.)
	}
	switch ErrorCode(err) {
	case 95018:
		return r.refused95018(ctx, err)
	case 95013:
		r.ch.states.put(r.key, ServiceStateEnded, r.ch.now())
		return &ReplyError{Reason: ErrSessionEnded, Dropped: 1, Err: err}
	case 95001:
		r.ch.quota.exhaust(r.key)
		return &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1, Err: err}
	case 95002:
		return &ReplyError{Reason: ErrSessionExpired, Dropped: 1, Err: err}
	}
	if transient(err) && r.failure == nil {
		r.failure = err
	}
	return err
}

func (r *replier) Ready(ctx context.Context) error {
	if r.user == "" {
		return fmt.Errorf("%w: this message has no customer to reply to", ErrInvalidArgument)
	}
	if err := r.readyState(ctx, true); err != nil {
		return err
	}
	return r.haveQuota(1)
}

func (r *replier) haveQuota(n int) error {
	if r.QuotaLeft() == 0 {
		return &ReplyError{Reason: ErrQuotaExceeded, Dropped: n}
	}
	return nil
}

// one builds a single message, when there is quota for it.
func one(c Content) func(context.Context, int) ([]Content, *ReplyError, error) {
	return func(_ context.Context, left int) ([]Content, *ReplyError, error) {
		if left == 0 {
			return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}, nil
		}
		return []Content{c}, nil, nil
	}
}

func (r *replier) Send(ctx context.Context, c Content) error {
	t, p, err := contentPayload(c)
	if err != nil {
		return err
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.do(ctx, "send", callHash(string(t), body), one(c))
}

func (r *replier) Link(ctx context.Context, l *Link) error         { return r.Send(ctx, l) }
func (r *replier) Menu(ctx context.Context, m *Menu) error         { return r.Send(ctx, m) }
func (r *replier) Location(ctx context.Context, l *Location) error { return r.Send(ctx, l) }

func (r *replier) Text(ctx context.Context, s string) error {
	if s == "" {
		return nil
	}
	return r.do(ctx, "text", callHash("text", []byte(s)), r.textParts(s))
}

// textParts builds the messages of text s: split at 2048 bytes, fitted into what is left of the
// quota (cut with the truncation marker when it needs more).
func (r *replier) textParts(s string) func(context.Context, int) ([]Content, *ReplyError, error) {
	return func(_ context.Context, left int) ([]Content, *ReplyError, error) {
		if !utf8.ValidString(s) {
			return nil, nil, fmt.Errorf("%w: text is not valid UTF-8", ErrInvalidArgument)
		}
		parts := media.SplitText(s, media.MaxTextBytes)
		var cut *ReplyError
		if len(parts) > left {
			if left == 0 {
				return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: len(parts), DroppedBytes: len(s)}, nil
			}
			fitted, _ := media.FitText(s, media.MaxTextBytes, left, r.ch.cfg.marker)
			sent := 0
			for _, p := range fitted {
				sent += len(p)
			}
			sent -= len(r.ch.cfg.marker)
			cut = &ReplyError{Reason: ErrQuotaExceeded, Dropped: len(parts) - len(fitted), DroppedBytes: len(s) - max(sent, 0)}
			parts = fitted
		}
		contents := make([]Content, len(parts))
		for i, p := range parts {
			contents[i] = NewText(p)
		}
		return contents, cut, nil
	}
}

// upload uploads data as kind. Callers check the quota first, so a reply that cannot be sent
// costs no upload.
func (r *replier) upload(ctx context.Context, kind media.Kind, filename string, data []byte) (string, error) {
	up, err := r.ch.client.UploadMedia(ctx, kind, filename, bytes.NewReader(data))
	if err != nil {
		r.ch.noteErr("media/upload", err, "open_kfid", r.openKfID)
		if transient(err) && r.failure == nil {
			r.failure = err
		}
		return "", err
	}
	return up.MediaID, nil
}

func (r *replier) Image(ctx context.Context, data []byte) error {
	return r.do(ctx, "image", callHash("image", data), r.buildImage(data))
}

func (r *replier) buildImage(data []byte) func(context.Context, int) ([]Content, *ReplyError, error) {
	return func(ctx context.Context, left int) ([]Content, *ReplyError, error) {
		if left == 0 {
			return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}, nil
		}
		out, format, err := media.FitImage(data, media.MaxImageBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("kf: reply image: %w", err)
		}
		ext := ".jpg"
		if format == "png" {
			ext = ".png"
		}
		id, err := r.upload(ctx, media.KindImage, "image"+ext, out)
		if err != nil {
			return nil, nil, err
		}
		return []Content{NewImage(id)}, nil, nil
	}
}

// maxFetchBytes caps what ImageURL downloads (a larger source could not become ≤ 10 MB sensibly).
const maxFetchBytes = 64 << 20

// ImageURL downloads the image only when the call is not recorded yet (a rerun replays the image
// the first run uploaded).
func (r *replier) ImageURL(ctx context.Context, rawURL string) error {
	return r.do(ctx, "image_url", callHash("image_url", []byte(rawURL)), func(ctx context.Context, left int) ([]Content, *ReplyError, error) {
		if left == 0 {
			return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}, nil
		}
		data, err := r.ch.fetchImage(ctx, rawURL)
		if err != nil {
			return nil, nil, err
		}
		return r.buildImage(data)(ctx, left)
	})
}

func (r *replier) Voice(ctx context.Context, data []byte) error {
	return r.do(ctx, "voice", callHash("voice", data), func(ctx context.Context, left int) ([]Content, *ReplyError, error) {
		if left == 0 {
			return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}, nil
		}
		pieces, err := media.ToVoice(ctx, data, r.ch.cfg.encoder)
		if err != nil {
			if errors.Is(err, media.ErrNoEncoder) {
				return nil, nil, fmt.Errorf("kf: reply voice: non-AMR audio needs the Channel's AMR encoder (WithAMREncoder): %w", err)
			}
			return nil, nil, fmt.Errorf("kf: reply voice: %w", err)
		}
		send := pieces
		var cut *ReplyError
		if len(pieces) > left {
			send = pieces[:left]
			cut = &ReplyError{Reason: ErrQuotaExceeded, Dropped: len(pieces) - left}
		}
		contents := make([]Content, len(send))
		for i, p := range send {
			id, err := r.upload(ctx, media.KindVoice, "voice"+strconv.Itoa(i+1)+".amr", p)
			if err != nil {
				return nil, nil, err
			}
			contents[i] = NewVoice(id)
		}
		return contents, cut, nil
	})
}

func (r *replier) Video(ctx context.Context, data []byte) error {
	return r.uploadAndSend(ctx, media.KindVideo, "video.mp4", data, func(id string) Content { return NewVideo(id) })
}

func (r *replier) File(ctx context.Context, filename string, data []byte) error {
	if filename == "" {
		filename = "file"
	}
	return r.uploadAndSend(ctx, media.KindFile, filename, data, func(id string) Content { return NewFile(id) })
}

func (r *replier) uploadAndSend(ctx context.Context, kind media.Kind, filename string, data []byte, mk func(string) Content) error {
	return r.do(ctx, string(kind), callHash(string(kind), []byte(filename), data), func(ctx context.Context, left int) ([]Content, *ReplyError, error) {
		if left == 0 {
			return nil, &ReplyError{Reason: ErrQuotaExceeded, Dropped: 1}, nil
		}
		id, err := r.upload(ctx, kind, filename, data)
		if err != nil {
			return nil, nil, err
		}
		return []Content{mk(id)}, nil, nil
	})
}

func (r *replier) Handoff(ctx context.Context, servicerUserID string) error {
	if r.user == "" {
		return fmt.Errorf("%w: this message has no customer to hand off", ErrInvalidArgument)
	}
	if !r.s.valid() {
		return errLeaseLost
	}
	st := ServiceStateQueued
	if servicerUserID != "" {
		st = ServiceStateServicer
	}
	_, err := r.ch.client.TransServiceState(ctx, TransServiceStateRequest{
		OpenKfID: r.openKfID, ExternalUserID: r.user, State: st, ServicerUserID: servicerUserID,
	})
	if err != nil {
		r.ch.noteErr("service_state/trans", err, "open_kfid", r.openKfID)
		return err
	}
	r.ch.states.put(r.key, st, r.ch.now())
	return nil
}

// customerOf is the customer a message concerns: its external_userid, or its event's.
func customerOf(m *Message) string {
	if m.ExternalUserID != "" {
		return m.ExternalUserID
	}
	if m.Event != nil {
		return m.Event.ExternalUserID
	}
	return ""
}

func customerKey(openKfID, user string) string { return openKfID + "\x00" + user }
