package kf

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// benchPage builds a 1000-message sync_msg page by cycling through the messages of
// testdata/sync_msg_all_types.json (every msgtype and event) with unique msgids. With known only,
// the unknown msgtype, unknown event and malformed body are left out (a typical page).
func benchPage(tb testing.TB, knownOnly bool) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/sync_msg_all_types.json")
	if err != nil {
		tb.Fatal(err)
	}
	var src struct {
		MsgList []map[string]any `json:"msg_list"`
	}
	if err := json.Unmarshal(b, &src); err != nil {
		tb.Fatal(err)
	}
	var pool []map[string]any
	for _, m := range src.MsgList {
		id := m["msgid"].(string)
		if knownOnly && (id == "from_meeting" || id == "from_future_event" || id == "from_bad_location") {
			continue
		}
		pool = append(pool, m)
	}
	list := make([]map[string]any, 1000)
	for i := range list {
		m := make(map[string]any, len(pool[i%len(pool)]))
		for k, v := range pool[i%len(pool)] {
			m[k] = v
		}
		m["msgid"] = fmt.Sprintf("msg%06d_%s", i, m["msgid"])
		list[i] = m
	}
	page, err := json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "next_cursor": "4gw7MepFLfgF2VC5npN", "has_more": 1, "msg_list": list})
	if err != nil {
		tb.Fatal(err)
	}
	return page
}

// BenchmarkDecodeSyncMsgPage decodes a 1000-message sync_msg page of mixed types the way SyncMsg
// does (one standard decode; a second pass only for messages needing their raw body).
func BenchmarkDecodeSyncMsgPage(b *testing.B) {
	for _, bc := range []struct {
		name      string
		knownOnly bool
	}{{"known", true}, {"with-unknown", false}} {
		page := benchPage(b, bc.knownOnly)
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				st, resp, err := decodeSyncMsgPage(page)
				if err != nil || st.ErrCode != 0 || len(resp.Messages) != 1000 {
					b.Fatal(err, st, len(resp.Messages))
				}
			}
		})
		// For comparison: json.Unmarshal into SyncMsgResponse (validates the page once more first).
		b.Run(bc.name+"/json.Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				var resp SyncMsgResponse
				if err := json.Unmarshal(page, &resp); err != nil || len(resp.Messages) != 1000 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeSyncMsgPagePerMessage is the naive alternative the page decoder avoids: split
// the list into raw messages, then decode each with Message.UnmarshalJSON.
func BenchmarkDecodeSyncMsgPagePerMessage(b *testing.B) {
	page := benchPage(b, true)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		var raw syncMsgRawWire
		if err := json.Unmarshal(page, &raw); err != nil {
			b.Fatal(err)
		}
		msgs := make([]Message, len(raw.MsgList))
		for i, r := range raw.MsgList {
			if err := msgs[i].UnmarshalJSON(r); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// The benchmark page decodes to the same messages as decoding each message alone.
func TestBenchPageConsistent(t *testing.T) {
	t.Parallel()
	for _, known := range []bool{true, false} {
		page := benchPage(t, known)
		_, resp, err := decodeSyncMsgPage(page)
		if err != nil {
			t.Fatal(err)
		}
		var raw syncMsgRawWire
		if err := json.Unmarshal(page, &raw); err != nil {
			t.Fatal(err)
		}
		for i, r := range raw.MsgList {
			var m Message
			if err := m.UnmarshalJSON(r); err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(m)
			b, _ := json.Marshal(resp.Messages[i])
			if string(a) != string(b) {
				t.Fatalf("message %d differs:\n%s\n%s", i, a, b)
			}
		}
	}
}
