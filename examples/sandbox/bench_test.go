package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wxkf/wxkf/kf/kftest"
)

// BenchmarkHubPublish: one log line fanned out to 4 connected pages. It runs inside kftest's
// observer for every API call, so it must stay far below the cost of the call it describes.
func BenchmarkHubPublish(b *testing.B) {
	h := newHub(infoView{})
	stop := make(chan struct{})
	defer close(stop)
	for range 4 {
		_, sub := h.subscribe()
		go func() {
			for {
				select {
				case <-sub.ch:
				case <-sub.gone:
					return
				case <-stop:
					return
				}
			}
		}()
	}
	l := logEvent{At: time.Now(), Kind: "send", Title: "kf/send_msg",
		Tags: []tag{{"to", "customer-1"}, {"msgtype", "text"}, {"msgid", "ubfMterM33OyrMFUmTcKHCGw_0"}, {"bytes", "2007"}},
		Req:  json.RawMessage(`{"touser":"customer-1","open_kfid":"wk1","msgid":"ubfMterM33OyrMFUmTcKHCGw_0","msgtype":"text","text":{"content":"hello"}}`),
		Resp: json.RawMessage(`{"errcode":0,"errmsg":"ok","msgid":"ubfMterM33OyrMFUmTcKHCGw_0"}`)}
	b.ReportAllocs()
	for b.Loop() {
		h.logEvent(l)
	}
}

// BenchmarkRecordToLog: turning a sync_msg observation (a page of 10 messages) into a log line.
func BenchmarkRecordToLog(b *testing.B) {
	list := make([]json.RawMessage, 10)
	for i := range list {
		list[i] = json.RawMessage(`{"msgid":"m","open_kfid":"wk1","external_userid":"u","send_time":1,"origin":3,"msgtype":"text","text":{"content":"你好, wxkf"}}`)
	}
	resp, _ := json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "next_cursor": "AQAAAAAAAAAKAAAAAGdf0gRcc", "has_more": 0, "msg_list": list})
	rec := kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/sync_msg", Status: 200,
		Request: json.RawMessage(`{"cursor":"AQAAAAAAAAAAAAAAAGdf0gRcc","token":"…","limit":1000,"open_kfid":"wk1"}`), Response: resp}
	b.ReportAllocs()
	for b.Loop() {
		_ = recordToLog(rec)
	}
}
