package cursor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxJournalLine caps one journal line: a record holds an open_kfid (≤ MaxKeyLen) and a msgid (≤ MaxMsgIDLen),
// each at most 6 bytes per input byte once escaped, plus the timestamp.
const maxJournalLine = 6*(MaxKeyLen+MaxMsgIDLen) + 64

// appendJournalRecord appends one journal line: {"t":<unix ms>,"k":<open_kfid>,"m":<msgid>}\n.
func appendJournalRecord(buf []byte, at int64, key, id string) []byte {
	buf = append(buf, `{"t":`...)
	buf = strconv.AppendInt(buf, at, 10)
	buf = append(buf, `,"k":`...)
	buf = appendASCIIString(buf, key)
	buf = append(buf, `,"m":`...)
	buf = appendASCIIString(buf, id)
	return append(buf, "}\n"...)
}

type journalRecord struct {
	T int64  `json:"t"`
	K string `json:"k"`
	M string `json:"m"`
}

// journalScan is what parseJournal found.
type journalScan struct {
	good  int64 // bytes up to the end of the last complete line
	lines int   // complete lines
	torn  int64 // bytes after good: a last line cut short by a crash
}

// parseJournal reads journal lines from r and calls fn for each record. A last line without its newline is a
// write cut short by a crash: it is not an error, it is reported in torn (the caller truncates it away). A
// complete line that does not decode is corruption: the error wraps ErrCorrupt and names its line number; any
// other error is a read failure. Empty lines are skipped.
func parseJournal(r io.Reader, fn func(at int64, key, id string)) (journalScan, error) {
	var s journalScan
	br := bufio.NewReaderSize(r, maxJournalLine+1)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			// Longer than any valid record. Torn if no newline follows, else corrupt.
			n := int64(len(line))
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if err == io.EOF {
				s.torn = n
				return s, nil
			}
			if err != nil {
				return s, err
			}
			return s, fmt.Errorf("%w: line %d: longer than %d bytes", ErrCorrupt, s.lines+1, maxJournalLine)
		case err == io.EOF:
			s.torn = int64(len(line))
			return s, nil
		default:
			return s, err
		}
		body := bytes.TrimRight(line[:len(line)-1], "\r")
		if len(bytes.TrimSpace(body)) > 0 {
			rec, perr := parseJournalRecord(body)
			if perr != nil {
				return s, fmt.Errorf("%w: line %d: %w", ErrCorrupt, s.lines+1, perr)
			}
			fn(rec.T, rec.K, rec.M)
		}
		s.lines++
		s.good += int64(len(line))
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
	if err := checkMsgIDs([]string{rec.M}); err != nil {
		return rec, err
	}
	return rec, nil
}
