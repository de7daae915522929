package cursor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// CursorFileName is the cursor file inside the directory given to [OpenDir]: one JSON object mapping each
// open_kfid to its next_cursor. It is the file chatgpt-on-wechat's wechatcom_kf channel keeps, in the same
// format, so a bot moving from it to wxkf keeps its cursors (and can move back).
const CursorFileName = "wechatcom_kf_cursors.json"

// JournalFileName is the done-msgid journal beside the cursor file: one JSON object per line, a done mark
// {"t": unix milliseconds, "k": open_kfid, "m": msgid} appended by MarkDone, or a reply record
// {"t": unix milliseconds, "k": open_kfid, "r": msgid, "b": the record in base64} appended by PutReply;
// rewritten by compaction.
const JournalFileName = "wechatcom_kf_done.jsonl"

// maxCursorFileSize caps what OpenDir reads from the cursor file; a real one holds a few hundred bytes per
// account.
const maxCursorFileSize = 16 << 20

// cursorValue is one value of the cursor file: a cursor string, or any other JSON value (kept verbatim so a
// rewrite does not drop what another program stored there).
type cursorValue struct {
	s   string
	raw []byte // nil for a string value; else the value as read
}

var errNotObject = errors.New("top-level value is not a JSON object")

// parseCursorFile decodes the cursor file: a JSON object of string → string as written by Python's json.dump
// (any indentation, \uXXXX escapes, an optional UTF-8 byte order mark). Values that are not strings are kept
// verbatim; Load reports them as corrupt except null, which means "no cursor".
func parseCursorFile(data []byte) (map[string]cursorValue, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("file is empty")
	}
	if trimmed[0] != '{' {
		return nil, errNotObject
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]cursorValue, len(raw))
	for k, v := range raw {
		if len(v) > 0 && v[0] == '"' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("value of %q: %w", k, err)
			}
			out[k] = cursorValue{s: s}
			continue
		}
		out[k] = cursorValue{raw: slices.Clone([]byte(v))}
	}
	return out, nil
}

// encodeCursorFile writes m the way Python's json.dump(m, f) does with its defaults (separators ", " and ": ",
// ensure_ascii), keys sorted, no trailing newline.
func encodeCursorFile(m map[string]cursorValue) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := make([]byte, 0, 64*len(keys)+2)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		buf = appendASCIIString(buf, k)
		buf = append(buf, ": "...)
		v := m[k]
		if v.raw == nil {
			buf = appendASCIIString(buf, v.s)
			continue
		}
		out, err := appendPyValue(buf, v.raw)
		if err != nil {
			// Cannot happen for a value that came out of parseCursorFile; keep it verbatim rather than lose it.
			out = append(buf, v.raw...)
		}
		buf = out
	}
	return append(buf, '}')
}

// appendASCIIString appends s as a JSON string the way Python's json module does with ensure_ascii: printable
// ASCII as is, \" \\ \n \r \t \b \f, and everything else as \uXXXX (UTF-16 surrogate pairs above U+FFFF).
// Invalid UTF-8 becomes \ufffd.
func appendASCIIString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for _, r := range s {
		switch r {
		case '"':
			buf = append(buf, `\"`...)
		case '\\':
			buf = append(buf, `\\`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		case '\t':
			buf = append(buf, `\t`...)
		case '\b':
			buf = append(buf, `\b`...)
		case '\f':
			buf = append(buf, `\f`...)
		default:
			if r >= 0x20 && r < 0x7f {
				buf = append(buf, byte(r))
				continue
			}
			if r > 0xffff {
				r1, r2 := utf16.EncodeRune(r)
				for _, u := range []rune{r1, r2} {
					buf = append(buf, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
				}
				continue
			}
			if r == utf8.RuneError {
				r = 0xfffd
			}
			buf = append(buf, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
	}
	return append(buf, '"')
}

// appendPyValue re-encodes the JSON value raw in Python's default json.dump style. Numbers keep their literal.
func appendPyValue(buf []byte, raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// stack of open containers: true for an object; first[i] reports no member written yet.
	var stack, first []bool
	wantValue := true // in an object, false while a key is expected
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack, first = stack[:len(stack)-1], first[:len(first)-1]
			buf = append(buf, byte(d))
			wantValue = len(stack) == 0 || !stack[len(stack)-1]
			continue
		}
		// A new element: a separator unless it is the first in its container.
		if n := len(stack); n > 0 {
			inObject := stack[n-1]
			if !inObject || !wantValue {
				if !first[n-1] {
					buf = append(buf, ", "...)
				}
				first[n-1] = false
			}
		}
		isKey := len(stack) > 0 && stack[len(stack)-1] && !wantValue
		switch v := tok.(type) {
		case json.Delim:
			buf = append(buf, byte(v))
			stack = append(stack, v == '{')
			first = append(first, true)
			wantValue = v == '['
			continue
		case string:
			buf = appendASCIIString(buf, v)
		case json.Number:
			buf = append(buf, v...)
		case bool:
			buf = strconv.AppendBool(buf, v)
		case nil:
			buf = append(buf, "null"...)
		}
		if isKey {
			buf = append(buf, ": "...)
			wantValue = true
		} else if len(stack) > 0 && stack[len(stack)-1] {
			wantValue = false
		}
	}
}
