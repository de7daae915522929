package kf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wxkf/wxkf/media"
)

// Streaming through the reply record (outbox.go).
//
// Every part Stream sends while the text arrives is one recorded Replier call (kind "stream", hashed
// on the part's text), and the remainder sent at the end is another (kind "stream_end", hashed on
// the remainder before it is fitted; an empty remainder after earlier parts is recorded as a call
// with no messages, which marks where the stream ended). A part is recorded before it is sent, as
// every call is.
//
// A rerun compares its text with the recorded parts byte by byte as it arrives. While it matches,
// each recorded part is replayed (an unsent one is sent, with its msgid) and, past the record, the
// rerun goes on as the first run would have. As soon as it differs, the rerun completes the
// recorded parts of the stream, stops reading its own text and returns ErrReplySuperseded. So a
// crash after part 2, followed by a rerun whose model answers differently, leaves the customer with
// parts 1 and 2 of the first answer: cut short, never mixed with the second.

// Kinds of the recorded calls of a stream.
const (
	kindStream    = "stream"
	kindStreamEnd = "stream_end"
)

// When Stream sends a part before the text is complete.
const (
	// streamFirstFlushBytes: the first part goes out as soon as the finished paragraphs hold this
	// much, so that the customer sees the start of the answer early.
	streamFirstFlushBytes = 48
	// streamFlushBytes: later parts wait for this much, so that short paragraphs do not use up the
	// 5-message quota.
	streamFlushBytes = 1024
	// streamLookahead: a full-message cut (more than 2048 bytes waiting without a paragraph end)
	// is made only when this much text follows it, so that text still to come cannot move the cut
	// into a grapheme cluster (clusters are far shorter).
	streamLookahead = 256
)

// StreamError is what Replier.Stream returns when its source failed: a delta came with a non-nil
// Err. The Sent messages of the stream reached the customer (or were sent before, by an earlier
// run); the text after them was dropped, and the last message of the quota is still free.
//
// What a handler usually does: when Sent is 0, return Retry(e.Err) (or e.Err itself when the
// Channel already counts it as transient) so the Channel asks again later; otherwise send a short
// apology with r.Text and return nil. A rerun after parts were sent would only complete the
// recorded parts and be superseded: it could neither finish the answer nor apologise.
type StreamError struct {
	Sent int   // messages of the stream the customer has
	Err  error // the source's error
}

// Error says how many messages went out before the source failed, and why it failed.
func (e *StreamError) Error() string {
	return fmt.Sprintf("kf: stream source failed after %d message(s): %v", e.Sent, e.Err)
}

// Unwrap returns the source's error.
func (e *StreamError) Unwrap() error { return e.Err }

// streamer is one Stream call.
type streamer struct {
	r     *replier
	buf   []byte // text received and not sent: valid UTF-8 without leading white space
	tail  []byte // the first bytes of a rune whose other bytes have not arrived
	scan  int    // buf[:scan] holds no paragraph end still to look at
	parts int    // parts sent (or replayed) before the end
	err   error  // why the stream stopped early: a send failure, ErrReplySuperseded
}

func (r *replier) Stream(ctx context.Context, deltas iter.Seq2[string, error]) error {
	s := &streamer{r: r}
	if err := s.start(ctx); err != nil {
		return err
	}
	var srcErr error
	if deltas != nil {
		for d, err := range deltas {
			if err != nil {
				srcErr = err
				break
			}
			if !s.add(ctx, d) {
				break
			}
		}
	}
	switch {
	case s.err != nil:
		return s.err
	case srcErr != nil:
		return &StreamError{Sent: s.parts, Err: srcErr}
	}
	return s.finish(ctx)
}

// start refuses, before any text is read, a stream that could send nothing: the session forbids
// sending, the quota is used, or a rerun already answered differently.
func (s *streamer) start(ctx context.Context) error {
	r := s.r
	if _, ok := r.recordedCall(); ok {
		return nil // replay first
	}
	if r.diverged || r.rec.unreadable {
		return r.superseded()
	}
	if err := r.ready(ctx); err != nil {
		return err
	}
	return r.haveQuota(1)
}

// add takes one delta and sends what is ready. It reports false when reading should stop.
func (s *streamer) add(ctx context.Context, d string) bool {
	data := string(s.tail) + d
	k := completeRunes(data)
	s.tail = append(s.tail[:0], data[k:]...)
	s.append(strings.ToValidUTF8(data[:k], "\uFFFD"))
	for {
		progressed, stop := s.step(ctx)
		if stop {
			return false
		}
		if !progressed {
			break
		}
	}
	// More than the quota left can carry: the rest would be cut anyway. What is kept does not
	// depend on the delta sizes, so a rerun with the same text ends the same.
	if capacity := max(s.r.QuotaLeft(), 1)*media.MaxTextBytes + streamLookahead; len(s.buf) > capacity {
		for capacity > 0 && !utf8.RuneStart(s.buf[capacity]) {
			capacity--
		}
		s.buf, s.tail = s.buf[:capacity], nil
		return false
	}
	return true
}

func (s *streamer) append(text string) {
	if len(s.buf) == 0 {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
	}
	s.buf = append(s.buf, text...)
}

// completeRunes returns the length of the longest prefix of s that does not end inside a rune.
func completeRunes(s string) int {
	for i := len(s) - 1; i >= 0 && i >= len(s)-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if utf8.FullRuneInString(s[i:]) {
				return len(s)
			}
			return i
		}
	}
	return len(s)
}

// step sends the next part if one is ready. progressed: a part went out (another may be ready);
// stop: the stream ended early (s.err says why).
func (s *streamer) step(ctx context.Context) (progressed, stop bool) {
	r := s.r
	if c, ok := r.recordedCall(); ok {
		// Replaying: the text must match what the first run sent.
		if r.diverged {
			s.diverge(ctx)
			return false, true
		}
		switch c.Kind {
		case kindStream:
			text, ok := partText(c)
			n := min(len(s.buf), len(text))
			if !ok || !bytes.Equal(s.buf[:n], []byte(text[:n])) {
				s.diverge(ctx)
				return false, true
			}
			if len(s.buf) < len(text) {
				return false, false
			}
			return s.flush(ctx, text, len(text))
		case kindStreamEnd:
			return false, false // compared when the text is complete
		}
		s.diverge(ctx)
		return false, true
	}
	if r.diverged || r.rec.unreadable {
		s.err = r.superseded()
		return false, true
	}
	if r.QuotaLeft() <= 1 {
		return false, false // the last message is kept for the remainder
	}
	piece, n := s.next()
	if n == 0 {
		return false, false
	}
	return s.flush(ctx, piece, n)
}

// flush sends piece as one recorded call and drops the n bytes of buf it stands for.
func (s *streamer) flush(ctx context.Context, piece string, n int) (progressed, stop bool) {
	err := s.r.do(ctx, kindStream, callHash(kindStream, []byte(piece)), one(NewText(piece)))
	rest := bytes.TrimLeftFunc(s.buf[n:], unicode.IsSpace)
	s.buf = s.buf[:copy(s.buf, rest)]
	s.scan = 0
	if err != nil {
		s.fail(err)
		return false, true
	}
	s.parts++
	return true, false
}

// next returns the next part that may go out now, and how many bytes of buf it stands for (0:
// none yet). The choice depends only on the text, never on how it was cut into deltas, so a rerun
// that receives the same text sends the same parts: the first paragraph end after which the
// finished paragraphs hold at least the flush size and fit one message; failing that, once more
// than a message (plus the lookahead) is waiting, a full message cut where media.SplitText
// prefers.
func (s *streamer) next() (string, int) {
	least := streamFlushBytes
	if s.parts == 0 {
		least = streamFirstFlushBytes
	}
	window := media.MaxTextBytes + streamLookahead
	w := min(len(s.buf), window)
	i := s.scan
	for ; i < w; i++ {
		if s.buf[i] != '\n' {
			continue
		}
		j := i + 1
		if j < w && s.buf[j] == '\r' {
			j++
		}
		if j >= w {
			break // is it a blank line? The next byte tells.
		}
		if s.buf[j] != '\n' {
			continue
		}
		piece := bytes.TrimRightFunc(s.buf[:i], unicode.IsSpace)
		if len(piece) >= least && len(piece) <= media.MaxTextBytes {
			return string(piece), j + 1
		}
	}
	s.scan = i
	if len(s.buf) < window {
		return "", 0
	}
	first := media.SplitText(string(s.buf[:window]), media.MaxTextBytes)[0]
	return strings.TrimRightFunc(first, unicode.IsSpace), len(first)
}

// finish sends the remainder when the text is complete.
func (s *streamer) finish(ctx context.Context) error {
	r := s.r
	if len(s.tail) > 0 {
		s.append(strings.ToValidUTF8(string(s.tail), "\uFFFD")) // a rune that never completed
		s.tail = nil
	}
	rest := strings.TrimSpace(string(s.buf))
	c, recorded := r.recordedCall()
	switch {
	case recorded && (r.diverged || c.Kind != kindStreamEnd):
		// The first run's stream went on (or it made another call here): this text differs.
		s.diverge(ctx)
		return s.err
	case !recorded && (r.diverged || r.rec.unreadable):
		if rest == "" && s.parts == 0 {
			return nil
		}
		return r.superseded()
	case !recorded && rest == "":
		return s.markEnd(ctx)
	}
	// The remainder: new, or the first run's recorded end, replayed (a different remainder makes
	// do note the divergence, and it still completes the recorded one).
	err := r.do(ctx, kindStreamEnd, callHash(kindStreamEnd, []byte(rest)), r.textParts(rest))
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) {
			re.Sent += s.parts
		}
		return err
	}
	if recorded && r.diverged {
		return r.superseded()
	}
	return nil
}

// markEnd records where a stream whose text ended with its last part stopped (a call with no
// messages), so that a rerun can tell a stream that ended there from one that went on.
func (s *streamer) markEnd(ctx context.Context) error {
	r := s.r
	if s.parts == 0 {
		return nil
	}
	idx := len(r.rec.Calls)
	r.rec.Calls = append(r.rec.Calls, replyCall{Kind: kindStreamEnd, Hash: callHash(kindStreamEnd, nil)})
	r.call++
	if err := r.persist(ctx); err != nil {
		r.rec.Calls = r.rec.Calls[:idx]
		r.call--
		return err
	}
	return nil
}

// diverge handles a rerun whose text differs from the recorded stream: it completes the recorded
// call at this position and, while those are parts of the stream, the ones after it, then ends
// the stream with ErrReplySuperseded.
func (s *streamer) diverge(ctx context.Context) {
	r := s.r
	r.diverged = true
	for {
		c, ok := r.recordedCall()
		if !ok {
			break
		}
		kind := c.Kind
		if err := r.do(ctx, kind, "", nil); err != nil { // replays the recorded call
			s.fail(err)
			return
		}
		s.parts++
		if kind != kindStream {
			break
		}
	}
	s.err = r.superseded()
}

// fail ends the stream on a send failure.
func (s *streamer) fail(err error) {
	var re *ReplyError
	if errors.As(err, &re) {
		re.Sent += s.parts
		re.DroppedBytes += len(s.buf)
	}
	s.err = err
}

// recordedCall returns the recorded call the next Replier call replays, if any.
func (r *replier) recordedCall() (*replyCall, bool) {
	if r.call >= len(r.rec.Calls) {
		return nil, false
	}
	return &r.rec.Calls[r.call], true
}

// superseded counts and logs a call not sent because an earlier run answered differently.
func (r *replier) superseded() error {
	r.ch.stats.superseded.Add(1)
	r.ch.log.Warn("wxkf: a rerun streamed a different answer; its parts are dropped so the customer "+
		"never gets parts of two answers (the earlier answer may have been cut short)",
		"open_kfid", r.openKfID, "msgid", r.m.MsgID)
	return ErrReplySuperseded
}

// partText is the text of a recorded stream part.
func partText(c *replyCall) (string, bool) {
	if len(c.Parts) != 1 || c.Parts[0].Type != MsgTypeText {
		return "", false
	}
	var t struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(c.Parts[0].Body, &t) != nil {
		return "", false
	}
	return t.Content, true
}
