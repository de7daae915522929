package kftest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/wxkf/wxkf/kf/kftest"
)

// BenchmarkConversation is the lead's load shape: 1000 messages from 200 customers, pulled with
// sync_msg (limit 1000) and each answered with one send_msg, all over HTTP.
func BenchmarkConversation(b *testing.B) {
	srv := kftest.NewServer()
	defer srv.Close()
	hc := srv.HTTPServer().Client()
	tok := tokenOf(srv)
	kfid := srv.OpenKfID()
	post := func(path string, body []byte) []byte {
		resp, err := hc.Post(srv.URL()+path+"?access_token="+tok, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return out
	}
	cursor := ""
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range 1000 {
			srv.AddText(fmt.Sprintf("wmUser%03d", i%200), fmt.Sprint("message ", i))
		}
		n := 0
		for {
			req, _ := json.Marshal(map[string]any{"open_kfid": kfid, "cursor": cursor, "limit": 1000})
			var page struct {
				Errcode    int
				NextCursor string `json:"next_cursor"`
				HasMore    int    `json:"has_more"`
				MsgList    []struct {
					ExternalUserID string `json:"external_userid"`
					Text           struct{ Content string }
				} `json:"msg_list"`
			}
			if err := json.Unmarshal(post("/cgi-bin/kf/sync_msg", req), &page); err != nil || page.Errcode != 0 {
				b.Fatal(err, page.Errcode)
			}
			cursor = page.NextCursor
			for _, m := range page.MsgList {
				body, _ := json.Marshal(map[string]any{"touser": m.ExternalUserID, "open_kfid": kfid, "msgtype": "text",
					"text": map[string]string{"content": m.Text.Content}})
				var r struct{ Errcode int }
				if err := json.Unmarshal(post("/cgi-bin/kf/send_msg", body), &r); err != nil || r.Errcode != 0 {
					b.Fatal(err, r.Errcode)
				}
				n++
			}
			if page.HasMore == 0 {
				break
			}
		}
		if n != 1000 {
			b.Fatalf("answered %d messages", n)
		}
	}
}

// BenchmarkSendMsg measures one send_msg through the handler (no network).
func BenchmarkSendMsg(b *testing.B) {
	srv := kftest.NewServer()
	defer srv.Close()
	tok := tokenOf(srv)
	body, _ := json.Marshal(map[string]any{"touser": "wmUser", "open_kfid": srv.OpenKfID(), "msgtype": "text",
		"text": map[string]string{"content": "hello there"}})
	url := "/cgi-bin/kf/send_msg?access_token=" + tok
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		srv.AddText("wmUser", "hi") // reset the quota
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		w := discardWriter{h: http.Header{}}
		srv.ServeHTTP(&w, req)
	}
}

// BenchmarkSyncMsgPage measures one full sync_msg page of 1000 messages through the handler.
func BenchmarkSyncMsgPage(b *testing.B) {
	srv := kftest.NewServer()
	defer srv.Close()
	tok := tokenOf(srv)
	for i := range 1000 {
		srv.AddText(fmt.Sprint("wmUser", i%200), "some customer text")
	}
	body, _ := json.Marshal(map[string]any{"open_kfid": srv.OpenKfID()})
	url := "/cgi-bin/kf/sync_msg?access_token=" + tok
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		w := discardWriter{h: http.Header{}}
		srv.ServeHTTP(&w, req)
	}
}

type discardWriter struct {
	h http.Header
	n int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
func (w *discardWriter) WriteHeader(int) {}
