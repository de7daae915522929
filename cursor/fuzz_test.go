package cursor

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

type journalRec struct {
	at      int64
	key, id string
}

func FuzzParseJournal(f *testing.F) {
	f.Add([]byte(`{"t":1741944413000,"k":"wk","m":"m1"}` + "\n" + `{"t":1741944413001,"k":"wk","m":"m2"}` + "\n"))
	f.Add([]byte(`{"t":1741944413000,"k":"wk","m":"m1"}` + "\n" + `{"t":17419`))
	f.Add([]byte(`{"t":1,"k":"\u4e2d","m":"\ud83d\ude00"}` + "\r\n\n"))
	f.Add([]byte("garbage\n"))
	f.Add([]byte("\x00\x00\x00"))
	f.Add([]byte(`{"t":-1,"k":"wk","m":"m"}` + "\n"))
	f.Add(bytes.Repeat([]byte("x"), maxJournalLine+10))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []journalRec
		scan, err := parseJournal(bytes.NewReader(data), func(at int64, key, id string) {
			recs = append(recs, journalRec{at, key, id})
		})
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
		// Every record read is valid, and writing it again reads back the same.
		var buf []byte
		for _, r := range recs {
			if r.at <= 0 || checkKey("k", r.key) != nil || checkMsgIDs([]string{r.id}) != nil {
				t.Fatalf("invalid record accepted: %+v", r)
			}
			buf = appendJournalRecord(buf, r.at, r.key, r.id)
		}
		var again []journalRec
		scan2, err := parseJournal(bytes.NewReader(buf), func(at int64, key, id string) {
			again = append(again, journalRec{at, key, id})
		})
		if err != nil || scan2.torn != 0 || len(again) != len(recs) {
			t.Fatalf("rewritten journal: %v torn=%d, %d records of %d", err, scan2.torn, len(again), len(recs))
		}
		for i := range recs {
			if recs[i] != again[i] {
				t.Fatalf("record %d: %+v became %+v", i, recs[i], again[i])
			}
		}
	})
}

func FuzzJournalRecordRoundTrip(f *testing.F) {
	f.Add(int64(1741944413000), "wkAbC", "msgid-1")
	f.Add(int64(1), "账号", "😀\n\"\\")
	f.Fuzz(func(t *testing.T, at int64, key, id string) {
		if at <= 0 || checkKey("k", key) != nil || checkMsgIDs([]string{id}) != nil {
			return
		}
		line := appendJournalRecord(nil, at, key, id)
		if len(line) > maxJournalLine {
			t.Fatalf("record of %d bytes exceeds maxJournalLine %d", len(line), maxJournalLine)
		}
		var got []journalRec
		scan, err := parseJournal(bytes.NewReader(line), func(a int64, k, m string) { got = append(got, journalRec{a, k, m}) })
		if err != nil || scan.torn != 0 || len(got) != 1 || got[0] != (journalRec{at, key, id}) {
			t.Fatalf("%q: %v %+v %+v", line, err, scan, got)
		}
		if !utf8.Valid(line) {
			t.Fatal("record is not UTF-8")
		}
	})
}
