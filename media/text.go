package media

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// MinTextSplitBytes is the smallest part size SplitText and FitText work with: one UTF-8 encoded rune
// can take 4 bytes, so a smaller limit could not always make progress. Smaller limits are raised to it.
const MinTextSplitBytes = utf8.UTFMax

// DefaultTruncationMarker is what FitText appends to the last part when the text had to be cut short
// and the caller gave no marker of its own.
const DefaultTruncationMarker = "…"

// SplitText cuts s into parts of at most maxBytes bytes each, for WeCom text messages whose content is
// limited to MaxTextBytes (2048) bytes (send_msg, doc 94677; §6).
//
// Guarantees:
//   - every part is valid UTF-8, non-empty and at most maxBytes bytes long;
//   - the parts joined equal s exactly. If s is not valid UTF-8, each run of invalid bytes is first
//     replaced by U+FFFD (as strings.ToValidUTF8 does) because WeCom's JSON cannot carry them; the
//     parts then join to that cleaned string;
//   - no cut falls inside a UTF-8 sequence, nor inside a grapheme cluster (an emoji ZWJ sequence, a
//     skin-tone modifier, a flag, a letter and its combining marks, CR LF) unless that single cluster
//     is longer than maxBytes, in which case it is cut between runes.
//
// Where a part ends is chosen in this order of preference: after a blank line, after a line break,
// after a sentence end (。！？ always, and . ! ? when followed by white space; closing quotes or
// brackets and the spaces that follow stay with the sentence), after a space, and only then at any
// grapheme cluster boundary. A preferred cut is taken only when it keeps the part at least half full,
// so that a paragraph break near the start does not cost a whole extra message out of WeCom's
// 5-message quota; otherwise the next preference is tried.
//
// maxBytes below MinTextSplitBytes (4) is raised to it. An empty s yields nil: there is nothing to
// send.
func SplitText(s string, maxBytes int) []string {
	if s == "" {
		return nil
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if maxBytes < MinTextSplitBytes {
		maxBytes = MinTextSplitBytes
	}
	if len(s) <= maxBytes {
		return []string{s}
	}
	parts := make([]string, 0, len(s)/maxBytes+1)
	for len(s) > maxBytes {
		n := textCut(s, maxBytes)
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return append(parts, s)
}

// FitText is SplitText for a limited number of messages, such as what is left of WeCom's 5-message
// quota per customer in 48 hours (send_msg, doc 94677; §6).
//
// When SplitText(s, maxBytes) has at most maxParts parts, FitText returns exactly those and
// truncated == false. Otherwise it returns maxParts parts and truncated == true: the first
// maxParts-1 are the ones SplitText would return, and the last holds as much of the following text
// as fits (cut with the same preferences, trailing white space dropped) followed by marker, still at
// most maxBytes bytes. Without the marker, the parts joined are always a prefix of s (of s made valid
// UTF-8, see SplitText).
//
// An empty marker means DefaultTruncationMarker ("…"). A marker longer than maxBytes cannot fit in
// any part: the text is then cut without one (truncated still reports the loss). If not even one rune
// of text fits beside the marker, the last part is the marker alone.
//
// maxBytes below MinTextSplitBytes is raised to it. An empty s yields (nil, false); maxParts <= 0
// yields nil, with truncated true when s was not empty.
func FitText(s string, maxBytes, maxParts int, marker string) (parts []string, truncated bool) {
	if s == "" {
		return nil, false
	}
	if maxParts <= 0 {
		return nil, true
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if maxBytes < MinTextSplitBytes {
		maxBytes = MinTextSplitBytes
	}
	if marker == "" {
		marker = DefaultTruncationMarker
	}
	marker = strings.ToValidUTF8(marker, "\uFFFD")

	parts = make([]string, 0, min(maxParts, len(s)/maxBytes+1))
	for len(parts) < maxParts-1 && len(s) > maxBytes {
		n := textCut(s, maxBytes)
		parts = append(parts, s[:n])
		s = s[n:]
	}
	if len(s) <= maxBytes {
		return append(parts, s), false
	}
	if len(marker) > maxBytes {
		return append(parts, s[:textCut(s, maxBytes)]), true
	}
	last := ""
	if budget := maxBytes - len(marker); budget > 0 {
		last = strings.TrimRightFunc(s[:textCut(s, budget)], unicode.IsSpace)
	}
	return append(parts, last+marker), true
}

// Kinds of cut points, most preferred first.
const (
	cutBlankLine = iota
	cutLineBreak
	cutSentence
	cutSpace
	cutCluster
	numCutKinds
)

// Sentence-end tracking states in textCut.
const (
	sentNone         = iota
	sentPendingASCII // saw . ! ? (and maybe closers); counts only if white space follows
	sentEnded        // a confirmed sentence end, maybe followed by closers
	sentSpaces       // a confirmed sentence end followed by white space
)

// textCut returns where the first part of s should end: a byte offset n with 0 <= n <= limit, at a
// rune boundary, chosen as documented on SplitText. n > 0 whenever limit >= MinTextSplitBytes.
// It needs len(s) > limit (the caller only cuts what does not fit).
func textCut(s string, limit int) int {
	var best [numCutKinds]int // latest cut of each kind seen so far, 0 = none
	var (
		pos          int
		state        = -1
		lineBlank    = true  // the current line holds only white space so far
		sawLineBreak = false // the current line began with a line break inside s
		sent         = sentNone
		pendingSent  int // cut after a pending ASCII sentence end
	)
	// Only the first limit bytes and the first rune after them matter. Segmenting a bounded window
	// keeps the work linear even when one grapheme cluster is huge (a letter with 100 000
	// combining marks would otherwise be rescanned for every part).
	rest := s[:min(len(s), limit+utf8.UTFMax)]
	for len(rest) > 0 {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		end := pos + len(cluster)
		r, _ := utf8.DecodeRuneInString(cluster)
		newline := isTextNewline(cluster)
		space := !newline && isTextSpace(r)
		if end > limit {
			// This cluster does not fit; it only tells whether a pending ASCII sentence end counts.
			if sent == sentPendingASCII && (newline || space) {
				best[cutSentence] = pendingSent
			}
			break
		}
		switch {
		case newline:
			if sent == sentPendingASCII {
				best[cutSentence] = pendingSent
			}
			if lineBlank && sawLineBreak {
				best[cutBlankLine] = end
			} else {
				best[cutLineBreak] = end
			}
			lineBlank, sawLineBreak, sent = true, true, sentNone
		case space:
			switch sent {
			case sentPendingASCII:
				best[cutSentence] = pendingSent
				sent = sentSpaces
				best[cutSentence] = end
			case sentEnded, sentSpaces:
				sent = sentSpaces
				best[cutSentence] = end
			}
			best[cutSpace] = end
		default:
			lineBlank = false
			switch {
			case isCJKSentenceEnd(r):
				sent = sentEnded
				best[cutSentence] = end
			case r == '.' || r == '!' || r == '?':
				sent, pendingSent = sentPendingASCII, end
			case isTextCloser(r) && sent == sentEnded:
				best[cutSentence] = end
			case isTextCloser(r) && sent == sentPendingASCII:
				pendingSent = end
			default:
				sent = sentNone
			}
		}
		best[cutCluster] = end
		pos = end
	}
	minFill := limit / 2
	for kind := cutBlankLine; kind < cutCluster; kind++ {
		if best[kind] > 0 && best[kind] >= minFill {
			return best[kind]
		}
	}
	if best[cutCluster] > 0 {
		return best[cutCluster]
	}
	// The first grapheme cluster alone is longer than limit: cut it at the last rune boundary.
	n := min(limit, len(s))
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// isTextNewline reports whether a grapheme cluster is a line break (LF, CR LF, CR, U+2028, U+2029).
func isTextNewline(cluster string) bool {
	switch cluster {
	case "\n", "\r\n", "\r", "\u2028", "\u2029":
		return true
	}
	return false
}

// isTextSpace reports whether r is a breaking horizontal space. No-break spaces are not.
func isTextSpace(r rune) bool {
	switch r {
	case '\u00a0', '\u2007', '\u202f', '\ufeff':
		return false
	}
	return unicode.IsSpace(r)
}

// isCJKSentenceEnd reports whether r ends a sentence with no space needed after it.
func isCJKSentenceEnd(r rune) bool {
	return r == '。' || r == '！' || r == '？'
}

// isTextCloser reports whether r is a closing quote or bracket that belongs to the sentence before it.
func isTextCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '}', '”', '’', '）', '」', '』', '】', '》', '〉', '〕', '］', '｝':
		return true
	}
	return false
}
