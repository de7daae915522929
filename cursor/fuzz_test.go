package cursor

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseCursorFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "python", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"a": "b"`, `{"a": 1e400}`, `{"a": -0.0, "b": [[], {}]}`,
		"\xef\xbb\xbf{\"a\": \"b\"}", `{"\ud800": "\udc00x"}`, `{"a": "b", "a": "c"}`, "{\"a\": \"\xff\"}",
		`{"k": {"n": [1, {"x": null}], "t": true, "f": false}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseCursorFile(data)
		if err != nil {
			return
		}
		enc := encodeCursorFile(m)
		if !json.Valid(enc) {
			t.Fatalf("encoded file is not valid JSON: %q", enc)
		}
		for _, b := range enc {
			if b >= 0x80 {
				t.Fatalf("encoded file is not ASCII (Python's ensure_ascii): %q", enc)
			}
		}
		m2, err := parseCursorFile(enc)
		if err != nil {
			t.Fatalf("cannot read back what was written: %v\n%q", err, enc)
		}
		if len(m2) != len(m) {
			t.Fatalf("keys: %d, after rewrite %d", len(m), len(m2))
		}
		for k, v := range m {
			v2, ok := m2[k]
			if !ok || (v.raw == nil) != (v2.raw == nil) || v.s != v2.s {
				t.Fatalf("key %q: %+v became %+v", k, v, v2)
			}
			if v.raw != nil && !jsonEqual(t, v.raw, v2.raw) {
				t.Fatalf("key %q: preserved value %s became %s", k, v.raw, v2.raw)
			}
		}
		if enc2 := encodeCursorFile(m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%q\n%q", enc, enc2)
		}
	})
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if err := da.Decode(&x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := db.Decode(&y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// encodeJournalRecord writes rec back as the line parseJournal read it from.
func encodeJournalRecord(buf []byte, rec journalRecord) []byte {
	if rec.R != "" {
		return appendReplyRecord(buf, rec.T, rec.K, rec.R, rec.B)
	}
	return appendJournalRecord(buf, rec.T, rec.K, rec.M)
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"t":1741944413000,"k":"wk","m":"m1"}` + "\n" + `{"t":1741944413001,"k":"wk","m":"m2"}` + "\n"))
	f.Add([]byte(`{"t":1741944413000,"k":"wk","m":"m1"}` + "\n" + `{"t":17419`))
	f.Add([]byte(`{"t":1,"k":"\u4e2d","m":"\ud83d\ude00"}` + "\r\n\n"))
	f.Add([]byte(`{"t":1,"k":"wk","r":"m1","b":"AP8K"}` + "\n" + `{"t":2,"k":"wk","m":"m1"}` + "\n"))
	f.Add([]byte(`{"t":1,"k":"wk","r":"m1","b":""}` + "\n"))
	f.Add([]byte("garbage\n"))
	f.Add([]byte("\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x00" + `{"t":1,"k":"wk","m":"m1"}` + "\n"))
	f.Add([]byte(`{"t":1,"k"` + "\x00\x00\x00" + `{"t":1,"k":"wk","m":"m1"}` + "\n"))
	f.Add(append(bytes.Repeat([]byte{0}, maxJournalLine+10), `{"t":1,"k":"wk","m":"m1"}`+"\n"...))
	f.Add([]byte(`{"t":-1,"k":"wk","m":"m"}` + "\n"))
	f.Add(bytes.Repeat([]byte("x"), maxJournalLine+10))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []journalRecord
		scan, err := parseJournal(bytes.NewReader(data), func(rec journalRecord) { recs = append(recs, rec) })
		if err != nil {
			return
		}
		if scan.good+scan.torn != int64(len(data)) {
			t.Fatalf("good %d + torn %d != %d", scan.good, scan.torn, len(data))
		}
		if scan.good > 0 && data[scan.good-1] != '\n' {
			t.Fatalf("good part does not end with a newline")
		}
		if bytes.IndexByte(data[scan.good:], '\n') >= 0 {
			t.Fatalf("torn tail contains a newline")
		}
		if len(scan.damaged) > 0 && bytes.IndexByte(data, 0) < 0 {
			t.Fatalf("lines %v skipped as damaged in a journal without NUL bytes", scan.damaged)
		}
		// Every record read is valid, and writing it again reads back the same.
		var buf []byte
		for _, r := range recs {
			id := r.M + r.R
			if r.T <= 0 || checkKey("k", r.K) != nil || checkMsgIDs([]string{id}) != nil || (r.R != "") == (r.M != "") ||
				(r.R != "" && checkReply(r.B) != nil) {
				t.Fatalf("invalid record accepted: %+v", r)
			}
			buf = encodeJournalRecord(buf, r)
		}
		var again []journalRecord
		scan2, err := parseJournal(bytes.NewReader(buf), func(rec journalRecord) { again = append(again, rec) })
		if err != nil || scan2.torn != 0 || len(again) != len(recs) {
			t.Fatalf("rewritten journal: %v torn=%d, %d records of %d", err, scan2.torn, len(again), len(recs))
		}
		for i := range recs {
			if !reflect.DeepEqual(recs[i], again[i]) {
				t.Fatalf("record %d: %+v became %+v", i, recs[i], again[i])
			}
		}
	})
}

func FuzzJournalRecordRoundTrip(f *testing.F) {
	f.Add(int64(1741944413000), "wkAbC", "msgid-1", []byte(nil))
	f.Add(int64(1), "账号", "😀\n\"\\", []byte{0, 0xff, '\n'})
	// The longest line: every byte of the ids escaped as \u00XX, and the largest record.
	f.Add(int64(math.MaxInt64), strings.Repeat("\x01", MaxKeyLen), strings.Repeat("\x01", MaxMsgIDLen), bytes.Repeat([]byte{0xff}, MaxReplyLen))
	f.Fuzz(func(t *testing.T, at int64, key, id string, rec []byte) {
		if at <= 0 || checkKey("k", key) != nil || checkMsgIDs([]string{id}) != nil || len(rec) > MaxReplyLen {
			return
		}
		want := journalRecord{T: at, K: key, M: id}
		if len(rec) > 0 {
			want = journalRecord{T: at, K: key, R: id, B: rec}
		}
		line := encodeJournalRecord(nil, want)
		if len(line) > maxJournalLine {
			t.Fatalf("record of %d bytes exceeds maxJournalLine %d", len(line), maxJournalLine)
		}
		var got []journalRecord
		scan, err := parseJournal(bytes.NewReader(line), func(r journalRecord) { got = append(got, r) })
		if err != nil || scan.torn != 0 || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("%q: %v %+v %+v", line, err, scan, got)
		}
		if !utf8.Valid(line) {
			t.Fatal("record is not UTF-8")
		}
	})
}
