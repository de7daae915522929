package kftest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wxkf/wxkf/kf/kftest"
)

// FuzzSendMsg feeds arbitrary bodies to send_msg and send_msg_on_event through the real handler.
// Besides "no panic, always a JSON answer", it checks the rules hold for whatever was accepted:
// text is 1..2048 bytes of valid UTF-8, the client msgid is well-formed, the quota never goes past 5.
func FuzzSendMsg(f *testing.F) {
	srv := kftest.NewServer(kftest.WithSeed(1))
	defer srv.Close()
	tok := tokenOf(srv)
	kfid := srv.OpenKfID()
	img := srv.PutMedia("image", "a.png", []byte("\x89PNG\r\n\x1a\n0000000000"))
	srv.AddText(customer, "hi")

	seeds := []string{
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"text","text":{"content":"hello"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgid":"abc_-1","msgtype":"text","text":{"content":"\ud83d\ude00"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"image","image":{"media_id":"` + img + `"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"msgmenu","msgmenu":{"head_content":"h","list":[{"type":"click","click":{"id":"1","content":"a"}},{"type":"view","view":{"url":"https://x.y","content":"v"}},{"type":"text","text":{"content":"t","no_newline":1}}],"tail_content":"t"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"link","link":{"title":"t","url":"http://a.b","thumb_media_id":"` + img + `"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"miniprogram","miniprogram":{"appid":"wx1","title":"t","pagepath":"p","thumb_media_id":"` + img + `"}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"location","location":{"latitude":1.5,"longitude":-2}}`,
		`{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"ca_link","ca_link":{"link_url":"https://a"}}`,
		`{"code":"x","msgtype":"text","text":{"content":"w"}}`,
		`{"msgtype":"text","text":{"content":"\ud800"}}`,
		`{"text":null,"msgtype":"text"}`,
		`[]`, `null`, `{"msgmenu":{"list":[null,1,"x",{}]},"msgtype":"msgmenu","touser":"a","open_kfid":"b"}`,
		"{\"msgtype\":\"text\",\"text\":{\"content\":\"\xff\"}}",
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, onEvent bool) {
		path := "/cgi-bin/kf/send_msg"
		if onEvent {
			path = "/cgi-bin/kf/send_msg_on_event"
		}
		before := len(srv.Sent())
		req := httptest.NewRequest(http.MethodPost, path+"?access_token="+tok, bytes.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("HTTP %d", w.Code)
		}
		var r struct {
			Errcode *int   `json:"errcode"`
			MsgID   string `json:"msgid"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.Errcode == nil {
			t.Fatalf("answer is not a WeCom JSON: %q", w.Body.String())
		}
		sent := srv.Sent()
		if *r.Errcode != 0 {
			if len(sent) != before {
				t.Fatalf("rejected (%d) but recorded", *r.Errcode)
			}
			return
		}
		if len(sent) != before+1 {
			t.Fatalf("accepted but not recorded once")
		}
		s := sent[len(sent)-1]
		if s.MsgID != r.MsgID || s.MsgID == "" {
			t.Fatalf("msgid %q vs %q", s.MsgID, r.MsgID)
		}
		if len(s.ClientMsgID) > 32 || strings.Trim(s.ClientMsgID, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != "" {
			t.Fatalf("bad client msgid accepted: %q", s.ClientMsgID)
		}
		if s.MsgType == "text" && (s.Text == "" || len(s.Text) > 2048 || !utf8.ValidString(s.Text)) {
			t.Fatalf("bad text accepted: %d bytes", len(s.Text))
		}
		if q := srv.QuotaLeft(kfid, customer); q < 0 || q > 5 {
			t.Fatalf("quota %d", q)
		}
		if !onEvent && srv.QuotaLeft(kfid, customer) == 0 {
			srv.AddText(customer, "refill") // keep accepting so the property checks keep running
		}
	})
}

// FuzzSyncMsg feeds arbitrary bodies (cursors, tokens, limits) to sync_msg: never a panic, always
// JSON, never more items than the limit, and an accepted cursor always comes from the server.
func FuzzSyncMsg(f *testing.F) {
	srv := kftest.NewServer(kftest.WithSeed(2), kftest.WithPageSize(3))
	defer srv.Close()
	tok := tokenOf(srv)
	kfid := srv.OpenKfID()
	for range 7 {
		srv.AddText(customer, "x")
	}
	f.Add([]byte(`{"open_kfid":"` + kfid + `"}`))
	f.Add([]byte(`{"open_kfid":"` + kfid + `","cursor":"AQAAAAAAAAADAAAAAGhQ4yCm1vY4kUqYJ5nQ0h0","limit":2}`))
	f.Add([]byte(`{"open_kfid":"` + kfid + `","token":"ENCx","voice_format":1,"limit":1000}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/cgi-bin/kf/sync_msg?access_token="+tok, bytes.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		var r struct {
			Errcode *int              `json:"errcode"`
			MsgList []json.RawMessage `json:"msg_list"`
			HasMore int               `json:"has_more"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.Errcode == nil {
			t.Fatalf("answer is not a WeCom JSON: %q", w.Body.String())
		}
		if len(r.MsgList) > 3 {
			t.Fatalf("page of %d > page size", len(r.MsgList))
		}
	})
}

// FuzzAMRDuration: the frame walker never panics and never reports more than one frame per byte.
func FuzzAMRDuration(f *testing.F) {
	f.Add([]byte("#!AMR\n\x3c" + strings.Repeat("\x00", 31)))
	f.Add([]byte("#!AMR\n\x7c\x44"))
	f.Add([]byte("#!AMR-WB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := kftest.AMRDurationForTest(data)
		if err != nil {
			return
		}
		if d <= 0 || d > time.Duration(len(data)-6)*20*time.Millisecond {
			t.Fatalf("duration %v for %d bytes", d, len(data))
		}
	})
}

// FuzzMediaGetRange sends media/get with any Range header for a file just over 20 MB: no answer
// serves more than 20 MB of it (doc 96486), and a JSON answer always carries an errcode.
func FuzzMediaGetRange(f *testing.F) {
	srv := kftest.NewServer(kftest.WithSeed(1))
	defer srv.Close()
	tok := tokenOf(srv)
	data := bytes.Repeat([]byte("0123456789abcdef"), kftest.MaxMediaGetBytes/16+1)
	id := srv.PutMedia("file", "big.bin", data)
	hc := srv.HTTPServer().Client()
	for _, s := range []string{"", "bytes=0-99", "bytes=0-", "bytes=-100", "bytes=1-2,5-9", "bytes=9-1", "bytes=x", "items=0-1",
		"bytes=0-20971519", "bytes=0-20971520", "bytes=99999999999999999999-", "bytes=-0", "bytes= 1-2 , 3-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rng string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL()+"/cgi-bin/media/get?access_token="+tok+"&media_id="+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rng != "" {
			if strings.ContainsAny(rng, "\r\n\x00") || !utf8.ValidString(rng) {
				return
			}
			req.Header.Set("Range", rng)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return // a header net/http refuses to send
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		n, _ := body.ReadFrom(resp.Body)
		if n > kftest.MaxMediaGetBytes+1024 { // a multipart/byteranges answer adds part headers
			t.Fatalf("Range %q served %d bytes", rng, n)
		}
		if strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
			var e struct{ Errcode int }
			if json.Unmarshal(body.Bytes(), &e) != nil || e.Errcode == 0 {
				t.Fatalf("Range %q: JSON answer without errcode: %s", rng, body.Bytes())
			}
		}
	})
}

// FuzzKnowledgeIntent feeds arbitrary bodies to add_intent and mod_intent: never a panic, always a
// WeCom JSON answer, and list_intent keeps answering JSON in which image and video attachments carry
// no media_id (doc 95972 lists them by name).
func FuzzKnowledgeIntent(f *testing.F) {
	srv := kftest.NewServer(kftest.WithSeed(3))
	defer srv.Close()
	tok := tokenOf(srv)
	img := srv.PutMedia("image", "a.jpg", []byte("\xff\xd8\xff fake"))
	call := func(path string, body []byte) []byte {
		req := httptest.NewRequest(http.MethodPost, path+"?access_token="+tok, bytes.NewReader(body))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w.Body.Bytes()
	}
	var g struct {
		GroupList []struct {
			GroupID string `json:"group_id"`
		} `json:"group_list"`
	}
	_ = json.Unmarshal(call("/cgi-bin/kf/knowledge/list_group", []byte(`{}`)), &g)
	gid := g.GroupList[0].GroupID
	f.Add(false, []byte(`{"group_id":"`+gid+`","question":{"text":{"content":"q"}},"answers":[{"text":{"content":"a"},"attachments":[{"msgtype":"image","image":{"media_id":"`+img+`"}},{"msgtype":"link","link":{"title":"t","url":"u","picurl":"p"}}]}]}`))
	f.Add(true, []byte(`{"intent_id":"x","answers":[{"text":{"content":"a"},"attachments":[{"msgtype":"video","video":{"media_id":"`+img+`"}}]}]}`))
	f.Add(false, []byte(`{"group_id":"`+gid+`","question":{"text":{"content":"q"}},"answers":[{"text":{"content":"a"},"attachments":[null,1,{"msgtype":"miniprogram","miniprogram":[]}]}]}`))
	f.Fuzz(func(t *testing.T, mod bool, body []byte) {
		path := "/cgi-bin/kf/knowledge/add_intent"
		if mod {
			path = "/cgi-bin/kf/knowledge/mod_intent"
		}
		var r struct {
			Errcode *int `json:"errcode"`
		}
		if b := call(path, body); json.Unmarshal(b, &r) != nil || r.Errcode == nil {
			t.Fatalf("answer is not a WeCom JSON: %q", b)
		}
		var l struct {
			Errcode    *int `json:"errcode"`
			IntentList []struct {
				Answers []struct {
					Attachments []struct {
						Image map[string]any `json:"image"`
						Video map[string]any `json:"video"`
					} `json:"attachments"`
				} `json:"answers"`
			} `json:"intent_list"`
		}
		b := call("/cgi-bin/kf/knowledge/list_intent", []byte(`{"limit":1000}`))
		if json.Unmarshal(b, &l) != nil || l.Errcode == nil || *l.Errcode != 0 {
			t.Fatalf("list_intent: %q", b)
		}
		for _, in := range l.IntentList {
			for _, a := range in.Answers {
				for _, at := range a.Attachments {
					if at.Image["media_id"] != nil || at.Video["media_id"] != nil {
						t.Fatalf("a listed attachment carries a media_id: %q", b)
					}
				}
			}
		}
	})
}
