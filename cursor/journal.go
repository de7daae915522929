package cursor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxJournalLine caps one journal line: a record holds an open_kfid (≤ MaxKeyLen) and a msgid (≤ MaxMsgIDLen),
// each at most 6 bytes per input byte once escaped, the timestamp and, for a reply record, the record in
// padded base64 (4 bytes per 3).
const maxJournalLine = 6*(MaxKeyLen+MaxMsgIDLen) + 4*((MaxReplyLen+2)/3) + 64

// appendJournalRecord appends one done mark: {"t":<unix ms>,"k":<open_kfid>,"m":<msgid>}\n.
func appendJournalRecord(buf []byte, at int64, key, id string) []byte {
	buf = appendJournalHead(buf, at, key)
	buf = append(buf, `,"m":`...)
	buf = appendASCIIString(buf, id)
	return append(buf, "}\n"...)
}

// appendReplyRecord appends one reply record: {"t":<unix ms>,"k":<open_kfid>,"r":<msgid>,"b":<base64>}\n.
// The msgid is under "r", not "m", so that a reader that knows only done marks fails on the line instead of
// taking it for one.
func appendReplyRecord(buf []byte, at int64, key, id string, rec []byte) []byte {
	buf = appendJournalHead(buf, at, key)
	buf = append(buf, `,"r":`...)
	buf = appendASCIIString(buf, id)
	buf = append(buf, `,"b":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, rec)
	return append(buf, "\"}\n"...)
}

func appendJournalHead(buf []byte, at int64, key string) []byte {
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, at, 10)
	buf = append(buf, `,"k":`...)
	return appendASCIIString(buf, key)
}

// journalRecord is one journal line: a done mark (M set) or a reply record (R and B set).
type journalRecord struct {
	T int64  `json:"t"`
	K string `json:"k"`
	M string `json:"m"`
	R string `json:"r"`
	B []byte `json:"b"`
}

// journalScan is what parseJournal found.
type journalScan struct {
	good      int64 // bytes up to the end of the last complete line
	lines     int   // complete lines
	torn      int64 // bytes after good: a last line cut short by a crash
	damaged   []int // line numbers skipped as power-loss damage (NUL bytes, no record left)
	recovered int   // lines whose record was read after stripping leading NUL bytes
}

// parseJournal reads journal lines from r and calls fn for each record.
//
//   - A last line without its newline is a write cut short by a crash: it is not an error, it is reported in
//     torn (the caller truncates it away).
//   - A line containing NUL bytes is damage from a power loss: the file's size was extended but the data
//     blocks were not written, so a stretch reads as zeros (and a later record may follow them on the same
//     line). Leading NULs are stripped and the record used if the rest decodes; otherwise the line is
//     skipped and its number reported in damaged.
//   - A complete line without NULs that does not decode is corruption: the error wraps ErrCorrupt and names
//     its line number. Any other error is a read failure. Empty lines are skipped.
func parseJournal(r io.Reader, fn func(rec journalRecord)) (journalScan, error) {
	var s journalScan
	br := bufio.NewReaderSize(r, maxJournalLine+1)
	for {
		line, err := br.ReadSlice('\n')
		// A stretch of zeros longer than the buffer: drop it, what follows may be a record.
		var nuls int64
		for errors.Is(err, bufio.ErrBufferFull) && len(bytes.Trim(line, "\x00")) == 0 {
			nuls += int64(len(line))
			line, err = br.ReadSlice('\n')
		}
		n := nuls + int64(len(line))
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			// Longer than any valid record. Torn if no newline follows, else damaged or corrupt.
			hasNUL := nuls > 0 || bytes.IndexByte(line, 0) >= 0
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
				hasNUL = hasNUL || bytes.IndexByte(line, 0) >= 0
			}
			if err == io.EOF {
				s.torn = n
				return s, nil
			}
			if err != nil {
				return s, err
			}
			if !hasNUL {
				return s, fmt.Errorf("%w: line %d: longer than %d bytes", ErrCorrupt, s.lines+1, maxJournalLine)
			}
			s.damaged = append(s.damaged, s.lines+1)
			s.lines++
			s.good += n
			continue
		case err == io.EOF:
			s.torn = n
			return s, nil
		default:
			return s, err
		}
		body := bytes.TrimRight(line[:len(line)-1], "\r")
		switch {
		case nuls > 0 || bytes.IndexByte(body, 0) >= 0:
			rec, perr := parseJournalRecord(bytes.TrimLeft(body, "\x00"))
			if perr != nil {
				s.damaged = append(s.damaged, s.lines+1)
				break
			}
			s.recovered++
			fn(rec)
		case len(bytes.TrimSpace(body)) > 0:
			rec, perr := parseJournalRecord(body)
			if perr != nil {
				return s, fmt.Errorf("%w: line %d: %w", ErrCorrupt, s.lines+1, perr)
			}
			fn(rec)
		}
		s.lines++
		s.good += n
	}
}

func parseJournalRecord(b []byte) (journalRecord, error) {
	var rec journalRecord
	if len(b) == 0 || b[0] != '{' {
		return rec, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, err
	}
	if rec.T <= 0 {
		return rec, errors.New(`missing or invalid "t"`)
	}
	if err := checkKey("open_kfid", rec.K); err != nil {
		return rec, err
	}
	switch {
	case rec.M != "" && rec.R == "" && rec.B == nil:
		return rec, checkMsgIDs([]string{rec.M})
	case rec.M == "" && rec.R != "":
		if err := checkMsgIDs([]string{rec.R}); err != nil {
			return rec, err
		}
		return rec, checkReply(rec.B)
	}
	return rec, errors.New(`want a done mark ("m") or a reply record ("r" and "b")`)
}
