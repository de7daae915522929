package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/media"
)

// When ReplyStream sends text before the answer is complete.
const (
	// FirstFlushBytes: the first message goes out as soon as the paragraphs completed so far hold
	// at least this many bytes, so the customer sees the start of the answer early.
	FirstFlushBytes = 48
	// FlushBytes: later messages go out when the completed paragraphs hold at least this many
	// bytes (or the text waiting exceeds one message, 2048 bytes), so that early messages do not
	// waste much of the 5-message quota on short pieces.
	FlushBytes = 1024
)

// ErrEmptyAnswer: the stream succeeded but produced no text to send.
var ErrEmptyAnswer = errors.New("llm: the answer is empty")

// ReplyStream sends a streamed answer through r while it is being generated. stream runs the
// generation (e.g. Client.Stream) and calls onDelta with each piece of text; it returns the whole
// text at the end.
//
// While streaming, completed paragraphs (text before a blank line) are sent as messages of at
// most 2048 bytes: the first as soon as it holds FirstFlushBytes, the next ones when they hold
// FlushBytes or a whole message's worth, cut at the best boundary (media.SplitText). This only
// happens while r.QuotaLeft() > 1: one message of WeCom's 5-message quota (doc 94677) is always
// kept for the remainder, which is sent at the end with r.Text — split into what the quota has
// left and, if longer, cut with the truncation marker (then a *kf.ReplyError with
// kf.ErrQuotaExceeded is returned: what was sent is sent).
//
// If stream fails, what was already sent stays sent, the remainder is dropped and the error is
// returned: the kept message is then free for an apology. If a send fails (e.g.
// kf.ErrHumanServicer), no more is sent, the rest of the stream is read and ignored, and that
// error is returned. An answer with no text is ErrEmptyAnswer.
func ReplyStream(ctx context.Context, r kf.Replier, stream func(onDelta func(string)) (string, error)) error {
	s := &streamReply{ctx: ctx, r: r, para: -1}
	full, err := stream(s.delta)
	switch {
	case err != nil && s.err != nil:
		return errors.Join(s.err, fmt.Errorf("llm: answer: %w", err))
	case err != nil:
		return fmt.Errorf("llm: answer: %w", err)
	case s.err != nil:
		return s.err
	}
	rest := string(s.buf)
	if !s.gotDelta {
		rest = full // a stream that never called onDelta
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		if s.sent == 0 {
			return ErrEmptyAnswer
		}
		return nil
	}
	return r.Text(ctx, rest)
}

// streamReply is ReplyStream's state: the text received and not yet sent.
type streamReply struct {
	ctx      context.Context
	r        kf.Replier
	buf      []byte
	para     int // where the last blank line in buf starts, -1 if none
	scanned  int // how much of buf was searched for blank lines
	gotDelta bool
	sent     int   // messages sent
	err      error // the first send failure: nothing more is sent
}

func (s *streamReply) delta(d string) {
	s.gotDelta = true
	if s.err != nil {
		return
	}
	s.buf = append(s.buf, d...)
	if s.r.QuotaLeft() <= 1 {
		return // the last message is kept for the remainder
	}
	// Only the new text (and the two bytes before it, where a blank line may begin) is searched.
	from := max(s.scanned-2, 0)
	if i := lastParagraphEnd(s.buf[from:]); i >= 0 {
		s.para = from + i
	}
	s.scanned = len(s.buf)
	for s.r.QuotaLeft() > 1 {
		piece, n := s.ready()
		if n == 0 {
			return
		}
		s.buf = s.buf[:copy(s.buf, s.buf[n:])]
		s.para, s.scanned = -1, 0
		if i := lastParagraphEnd(s.buf); i >= 0 {
			s.para = i
		}
		s.scanned = len(s.buf)
		if piece == "" {
			continue
		}
		if err := s.r.Text(s.ctx, piece); err != nil {
			s.err = err
			return
		}
		s.sent++
	}
}

// ready returns the next piece that can be sent now, trimmed, and how many bytes of buf it
// consumes (0: nothing is ready). A piece is at most one message (2048 bytes), so sending it costs
// exactly one message of the quota.
func (s *streamReply) ready() (string, int) {
	if len(s.buf) > media.MaxTextBytes+lookahead {
		// More than a message is waiting: send a full one, cut where SplitText prefers (blank
		// line, line, sentence, word). Its end lies at least lookahead bytes before the end of the
		// text received, so text still to come (a combining mark, say) cannot move it. SplitText
		// sees two messages' worth at most: its first part is all that is needed.
		first := media.SplitText(string(s.buf[:min(len(s.buf), 2*media.MaxTextBytes)]), media.MaxTextBytes)[0]
		return strings.TrimSpace(first), len(first)
	}
	if s.para < 0 {
		return "", 0
	}
	done := bytes.TrimSpace(s.buf[:s.para])
	min := FlushBytes
	if s.sent == 0 {
		min = FirstFlushBytes
	}
	if len(done) < min || len(done) > media.MaxTextBytes {
		return "", 0 // too short to spend a message on, or wait for the full-message cut
	}
	end := s.para
	for end < len(s.buf) && (s.buf[end] == '\n' || s.buf[end] == '\r') {
		end++
	}
	return string(done), end
}

// lookahead is how much text must follow a full-message cut before it is made.
const lookahead = 32

// lastParagraphEnd returns where the last blank line ("\n\n", "\n\r\n") in b starts, or -1.
func lastParagraphEnd(b []byte) int {
	for i := len(b) - 1; i > 0; i-- {
		if b[i] != '\n' {
			continue
		}
		j := i - 1
		if b[j] == '\r' {
			j--
		}
		if j >= 0 && b[j] == '\n' {
			return j
		}
	}
	return -1
}
