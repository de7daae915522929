package kf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wxkf/wxkf/media"
)

// Replier sends replies to the customer of the message being handled. Every send carries a
// client msgid derived from (incoming msgid, send index), so a handler that runs again (a retry,
// or a replay after a crash) cannot reach the customer twice: WeCom rejects the repeated msgid
// and the Replier counts that as sent.
//
// The Replier keeps WeCom's rules (§6): at most 5 messages after the customer's latest message
// (a reply that needs more is fitted into what is left, and a *ReplyError says what was
// dropped), nothing after 48 h, and nothing while a human servicer has the session (state 3) or
// it is queued or ended (a *ReplyError with ErrHumanServicer, ErrSessionQueued or
// ErrSessionClosed). A Replier is used by one handler call; it is not safe for concurrent use.
type Replier interface {
	// Text sends s, split at 2048 bytes on UTF-8 and grapheme boundaries (preferring paragraph,
	// line, sentence and word ends), in at most QuotaLeft messages: a longer text is cut and
	// ends with the truncation marker.
	Text(ctx context.Context, s string) error
	// Image sends an image: JPEG, PNG, GIF, WebP, BMP or TIFF, fitted to a JPEG/PNG ≤ 10 MB.
	Image(ctx context.Context, data []byte) error
	// ImageURL downloads an image (with the Channel's fetch client and timeout) and sends it as Image.
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

// Reasons a ReplyError gives. Each also matches, with errors.Is, the WeCom code it prevents.
var (
	// ErrQuotaExhausted: the 5 messages after the customer's latest message are used (matches
	// ErrQuotaExceeded, 95001).
	ErrQuotaExhausted error = &replyReason{"5-message quota exhausted", 95001}
	// ErrWindowExpired: the customer's latest message is older than 48 h (matches
	// ErrSessionExpired, 95002).
	ErrWindowExpired error = &replyReason{"more than 48 h since the customer's last message", 95002}
	// ErrHumanServicer: a human servicer has the session (state 3); the bot stays quiet (matches
	// ErrStateForbidsSend, 95018).
	ErrHumanServicer error = &replyReason{"session is with a human servicer", 95018}
	// ErrSessionQueued: the session waits for a human servicer (state 2) (matches 95018).
	ErrSessionQueued error = &replyReason{"session is queued for a human servicer", 95018}
	// ErrSessionClosed: the session has ended (state 4) (matches ErrSessionEnded, 95013).
	ErrSessionClosed error = &replyReason{"session has ended", 95013}
	// ErrNoEncoder: Voice got non-AMR audio and the Channel has no AMR encoder.
	ErrNoEncoder = errors.New("kf: voice needs an AMR encoder (WithAMREncoder) for non-AMR input")
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
	Reason       error // ErrQuotaExhausted, ErrWindowExpired, ErrHumanServicer, ErrSessionQueued, ErrSessionClosed
	Sent         int   // messages of this call WeCom accepted
	Dropped      int   // messages of this call not sent
	DroppedBytes int   // Text: bytes of the text not sent (cut to fit the quota)
	Err          error // the API error that revealed the reason, if any
}

func (e *ReplyError) Error() string {
	s := fmt.Sprintf("%v: sent %d, dropped %d", e.Reason, e.Sent, e.Dropped)
	if e.DroppedBytes > 0 {
		s += fmt.Sprintf(" (%d bytes of text)", e.DroppedBytes)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ReplyError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// DuplicateMsgIDCode is the errcode with which send_msg rejects a client msgid already used in the
// account. WeCom documents that a repeated msgid fails but not its code; 40058 (invalid parameter)
// is the assumption here and in kftest. The Replier validates every field before sending, so a
// 40058 on a deterministic msgid means the message was accepted before and counts as sent.
const DuplicateMsgIDCode = 40058

func isDuplicateSend(err error) bool { return ErrorCode(err) == DuplicateMsgIDCode }

// clientMsgID derives the send_msg msgid of the index-th send answering incoming: ≤ 32 bytes of
// [0-9a-zA-Z_-] (§6), the same on every run, different for every (account, message, index).
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

type replier struct {
	ch       *Channel
	m        *Message
	openKfID string
	user     string
	key      string
	next     int // send index for client msgids
	checked  bool
}

func (ch *Channel) newReplier(m *Message) *replier {
	u := customerOf(m)
	return &replier{ch: ch, m: m, openKfID: m.OpenKfID, user: u, key: customerKey(m.OpenKfID, u)}
}

func (r *replier) QuotaLeft() int { return r.ch.quota.left(r.key) }

// ready checks what forbids sending before any upload: no customer, the session state, the 48 h
// window, the quota.
func (r *replier) ready(ctx context.Context) error {
	if r.user == "" {
		return fmt.Errorf("%w: this message has no customer to reply to", ErrInvalidArgument)
	}
	return r.readyState(ctx, r.ch.cfg.checkState)
}

// readyState checks the session state and the 48 h window. The state comes from the cache
// (session_status_change events, Handoff, earlier 95018 answers); with query it is asked from
// service_state/get when the cache has none.
func (r *replier) readyState(ctx context.Context, query bool) error {
	if err := r.checkState(ctx, query); err != nil {
		return err
	}
	if r.ch.quota.expired(r.key) {
		return &ReplyError{Reason: ErrWindowExpired}
	}
	return nil
}

func (r *replier) checkState(ctx context.Context, query bool) error {
	st, ok := r.ch.states.get(r.key, r.ch.now())
	if !ok && query && !r.checked {
		s, err := r.ch.client.GetServiceState(ctx, r.openKfID, r.user)
		if err != nil {
			// Unknown state: let WeCom decide (95018 is still turned into ErrHumanServicer).
			r.ch.noteErr("service_state/get", err)
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
		return ErrSessionClosed
	}
	return nil
}

// send sends one message with the next client msgid, counting it against the quota.
func (r *replier) send(ctx context.Context, c Content) error {
	id := clientMsgID(r.openKfID, r.m.MsgID, r.next)
	r.next++
	if !r.ch.quota.take(r.key, id) {
		return &ReplyError{Reason: ErrQuotaExhausted, Dropped: 1}
	}
	_, err := r.ch.client.SendMsg(ctx, SendMsgRequest{ToUser: r.user, OpenKfID: r.openKfID, MsgID: id, Content: c})
	switch {
	case err == nil:
		r.ch.stats.replies.Add(1)
		return nil
	case isDuplicateSend(err):
		r.ch.stats.duplicateSends.Add(1) // accepted by an earlier run: already with the customer
		return nil
	}
	r.ch.quota.release(r.key, id)
	r.ch.noteErr("send_msg", err)
	switch ErrorCode(err) {
	case 95018:
		r.ch.states.put(r.key, ServiceStateServicer, r.ch.now()) // queued or with a human: quiet until an event says otherwise
		return &ReplyError{Reason: ErrHumanServicer, Dropped: 1, Err: err}
	case 95013:
		r.ch.states.put(r.key, ServiceStateEnded, r.ch.now())
		return &ReplyError{Reason: ErrSessionClosed, Dropped: 1, Err: err}
	case 95001:
		r.ch.quota.exhaust(r.key)
		return &ReplyError{Reason: ErrQuotaExhausted, Dropped: 1, Err: err}
	case 95002:
		return &ReplyError{Reason: ErrWindowExpired, Dropped: 1, Err: err}
	}
	return err
}

// sendAll sends contents in order, stopping at the first failure; a *ReplyError gets the counts
// of the whole call.
func (r *replier) sendAll(ctx context.Context, contents []Content) error {
	for i, c := range contents {
		if err := r.send(ctx, c); err != nil {
			var re *ReplyError
			if errors.As(err, &re) {
				re.Sent, re.Dropped = i, len(contents)-i
			}
			return err
		}
	}
	return nil
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

func (r *replier) Send(ctx context.Context, c Content) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	return r.send(ctx, c)
}

func (r *replier) Text(ctx context.Context, s string) error {
	if s == "" {
		return nil
	}
	if err := r.ready(ctx); err != nil {
		return err
	}
	parts := media.SplitText(s, media.MaxTextBytes)
	left := r.QuotaLeft()
	var cut *ReplyError
	if len(parts) > left {
		if left == 0 {
			return &ReplyError{Reason: ErrQuotaExhausted, Dropped: len(parts), DroppedBytes: len(s)}
		}
		fitted, _ := media.FitText(s, media.MaxTextBytes, left, r.ch.cfg.marker)
		sent := 0
		for _, p := range fitted {
			sent += len(p)
		}
		sent -= len(r.ch.cfg.marker)
		cut = &ReplyError{Reason: ErrQuotaExhausted, Dropped: len(parts) - len(fitted), DroppedBytes: len(s) - max(sent, 0)}
		parts = fitted
	}
	contents := make([]Content, len(parts))
	for i, p := range parts {
		contents[i] = NewText(p)
	}
	if err := r.sendAll(ctx, contents); err != nil {
		return err
	}
	if cut != nil {
		cut.Sent = len(parts)
		return cut
	}
	return nil
}

// upload uploads data as kind. Callers check the quota first, so a reply that cannot be sent
// costs no upload.
func (r *replier) upload(ctx context.Context, kind media.Kind, filename string, data []byte) (string, error) {
	up, err := r.ch.client.UploadMedia(ctx, kind, filename, bytes.NewReader(data))
	if err != nil {
		r.ch.noteErr("media/upload", err)
		return "", err
	}
	return up.MediaID, nil
}

func (r *replier) haveQuota(n int) error {
	if r.QuotaLeft() == 0 {
		return &ReplyError{Reason: ErrQuotaExhausted, Dropped: n}
	}
	return nil
}

func (r *replier) Image(ctx context.Context, data []byte) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	if err := r.haveQuota(1); err != nil {
		return err
	}
	out, format, err := media.FitImage(data, media.MaxImageBytes)
	if err != nil {
		return fmt.Errorf("kf: reply image: %w", err)
	}
	ext := ".jpg"
	if format == "png" {
		ext = ".png"
	}
	id, err := r.upload(ctx, media.KindImage, "image"+ext, out)
	if err != nil {
		return err
	}
	return r.send(ctx, NewImage(id))
}

// maxFetchBytes caps what ImageURL downloads (a larger source could not become ≤ 10 MB sensibly).
const maxFetchBytes = 64 << 20

func (r *replier) ImageURL(ctx context.Context, rawURL string) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	if err := r.haveQuota(1); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.ch.cfg.fetchTO)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("kf: reply image url: %w", err)
	}
	resp, err := r.ch.cfg.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("kf: reply image url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kf: reply image url: HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return fmt.Errorf("kf: reply image url: %w", err)
	}
	if len(data) > maxFetchBytes {
		return fmt.Errorf("kf: reply image url: larger than %d MB", maxFetchBytes>>20)
	}
	return r.Image(ctx, data)
}

func (r *replier) Voice(ctx context.Context, data []byte) error {
	if err := r.ready(ctx); err != nil {
		return err
	}
	if err := r.haveQuota(1); err != nil {
		return err
	}
	pieces, err := media.ToVoice(ctx, data, r.ch.cfg.encoder)
	if err != nil {
		if errors.Is(err, media.ErrNoEncoder) {
			return fmt.Errorf("%w: %w", ErrNoEncoder, err)
		}
		return fmt.Errorf("kf: reply voice: %w", err)
	}
	left := r.QuotaLeft()
	send := pieces
	if len(pieces) > left {
		send = pieces[:left]
	}
	for i, p := range send {
		id, err := r.upload(ctx, media.KindVoice, "voice"+strconv.Itoa(i+1)+".amr", p)
		if err != nil {
			return err
		}
		if err := r.send(ctx, NewVoice(id)); err != nil {
			var re *ReplyError
			if errors.As(err, &re) {
				re.Sent, re.Dropped = i, len(pieces)-i
			}
			return err
		}
	}
	if len(send) < len(pieces) {
		return &ReplyError{Reason: ErrQuotaExhausted, Sent: len(send), Dropped: len(pieces) - len(send)}
	}
	return nil
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
	if err := r.ready(ctx); err != nil {
		return err
	}
	if err := r.haveQuota(1); err != nil {
		return err
	}
	id, err := r.upload(ctx, kind, filename, data)
	if err != nil {
		return err
	}
	return r.send(ctx, mk(id))
}

func (r *replier) Link(ctx context.Context, l *Link) error         { return r.Send(ctx, l) }
func (r *replier) Menu(ctx context.Context, m *Menu) error         { return r.Send(ctx, m) }
func (r *replier) Location(ctx context.Context, l *Location) error { return r.Send(ctx, l) }

func (r *replier) Handoff(ctx context.Context, servicerUserID string) error {
	if r.user == "" {
		return fmt.Errorf("%w: this message has no customer to hand off", ErrInvalidArgument)
	}
	st := ServiceStateQueued
	if servicerUserID != "" {
		st = ServiceStateServicer
	}
	_, err := r.ch.client.TransServiceState(ctx, TransServiceStateRequest{
		OpenKfID: r.openKfID, ExternalUserID: r.user, State: st, ServicerUserID: servicerUserID,
	})
	if err != nil {
		r.ch.noteErr("service_state/trans", err)
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

// welcome answers an enter_session event that carries a welcome_code, with send_msg_on_event
// inside the code's 20 s window (§5, §6).
func (ch *Channel) welcome(ctx context.Context, m *Message) {
	h := ch.onWelcome.Load()
	if h == nil || m.Event == nil || m.Event.WelcomeCode == "" {
		return
	}
	deadline := m.SendTime.Add(welcomeWindow)
	if m.SendTime.IsZero() {
		deadline = ch.now().Add(welcomeWindow)
	}
	if !ch.now().Before(deadline) {
		ch.log.Info("wxkf: welcome code expired before it could be used", "open_kfid", m.OpenKfID, "msgid", m.MsgID)
		ch.stats.welcomeExpired.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, deadline.Sub(ch.now()))
	defer cancel()
	c, err := ch.callWelcome(ctx, *h, m)
	if err != nil || c == nil {
		if err != nil {
			ch.log.Warn("wxkf: welcome handler", "err", err)
			ch.stats.handlerErrors.Add(1)
		}
		return
	}
	_, err = ch.client.SendMsgOnEvent(ctx, SendMsgOnEventRequest{
		Code: m.Event.WelcomeCode, MsgID: clientMsgID(m.OpenKfID, m.MsgID, 0), Content: c,
	})
	switch {
	case err == nil:
		ch.stats.replies.Add(1)
	case isDuplicateSend(err):
		ch.stats.duplicateSends.Add(1)
	default:
		ch.noteErr("send_msg_on_event", err)
	}
}

// welcomeWindow is how long a welcome_code is valid (§5).
const welcomeWindow = 20 * time.Second

func (ch *Channel) callWelcome(ctx context.Context, h WelcomeHandler, m *Message) (c Content, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("kf: welcome handler panicked: %v", v)
		}
	}()
	return h(ctx, m)
}
