package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func decodeEvent(t *testing.T, b []byte) event {
	t.Helper()
	var e event
	require.NoError(t, json.Unmarshal(b, &e))
	return e
}

// A page that connects gets the history first, then every later event, with nothing in between
// lost or repeated.
func TestHubSnapshotThenLive(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{Mode: "echo"})
	h.chatEvent(chatEvent{User: "u", Dir: "in", Kind: "text", Text: "before"})
	h.logEvent(logEvent{Kind: "sync", Title: "kf/sync_msg"})
	first, sub := h.subscribe()
	defer h.unsubscribe(sub)
	snap := decodeEvent(t, first)
	require.Equal(t, evReset, snap.Type)
	require.Len(t, snap.Reset.Chat, 1)
	assert.Equal(t, "before", snap.Reset.Chat[0].Text)
	require.Len(t, snap.Reset.Log, 1)
	assert.Equal(t, "echo", snap.Reset.Info.Mode)

	h.chatEvent(chatEvent{User: "u", Dir: "out", Kind: "text", Text: "after"})
	live := decodeEvent(t, <-sub.ch)
	assert.Equal(t, evChat, live.Type)
	assert.Equal(t, "after", live.Chat.Text)
	assert.Greater(t, live.Seq, snap.Seq)
}

// A page that stops reading is dropped (and reconnects to a fresh snapshot) instead of blocking
// the fake WeCom's observer or losing events silently.
func TestHubDropsLaggingPage(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{})
	_, slow := h.subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range subscriberBuf + 10 {
			h.logEvent(logEvent{Kind: "api", Title: fmt.Sprint(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a page that does not read")
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the lagging page was not dropped")
	}
	h.mu.Lock()
	assert.Empty(t, h.subs)
	assert.Len(t, h.log, min(subscriberBuf+10, maxLogHistory), "history keeps the newest lines")
	assert.Equal(t, fmt.Sprint(subscriberBuf+9), h.log[len(h.log)-1].Title)
	h.mu.Unlock()
}

func TestHubCloseEndsPages(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{})
	_, sub := h.subscribe()
	h.close()
	<-sub.gone
	first, late := h.subscribe()
	assert.Nil(t, first)
	<-late.gone
	h.unsubscribe(sub) // idempotent after close
}

// Part labels land on the bubbles whichever comes first: the label or the bubble.
func TestHubPartLabelsEitherOrder(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{})
	h.chatEvent(chatEvent{User: "u", Dir: "out", Kind: "text", MsgID: "g_0"})
	h.annotateParts([]string{"g_0", "g_1", "g_2"})
	h.chatEvent(chatEvent{User: "u", Dir: "out", Kind: "text", MsgID: "g_1"})
	h.chatEvent(chatEvent{User: "u", Dir: "out", Kind: "text", MsgID: "g_2"})
	h.annotateParts([]string{"solo"}) // one part: no label
	h.chatEvent(chatEvent{User: "u", Dir: "out", Kind: "text", MsgID: "solo"})
	got := h.chatHistory()
	require.Len(t, got, 4)
	for i := range 3 {
		assert.Equal(t, i+1, got[i].Part)
		assert.Equal(t, 3, got[i].Parts)
	}
	assert.Zero(t, got[3].Parts)
	assert.Empty(t, h.pending)
}

func TestHubHistoryCapped(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{})
	for i := range maxChatHistory + 5 {
		h.chatEvent(chatEvent{User: "u", Dir: "in", Text: fmt.Sprint(i)})
	}
	got := h.chatHistory()
	require.Len(t, got, maxChatHistory)
	assert.Equal(t, "5", got[0].Text)
	assert.Equal(t, fmt.Sprint(maxChatHistory+4), got[len(got)-1].Text)
}

func TestHubStatePublishedOnChange(t *testing.T) {
	t.Parallel()
	h := newHub(infoView{})
	_, sub := h.subscribe()
	st := &stateEvent{Customers: map[string]customerState{"u": {QuotaLeft: 5}}}
	h.setState(st)
	h.setState(&stateEvent{Customers: map[string]customerState{"u": {QuotaLeft: 5}}})
	h.setState(&stateEvent{Customers: map[string]customerState{"u": {QuotaLeft: 4}}})
	assert.Len(t, sub.ch, 2, "an unchanged state is not sent again")
}

// recordToLog shows the facts of each call and never more than kftest recorded (which is
// redacted); calls refused before their body was read show no made-up request facts.
func TestRecordToLog(t *testing.T) {
	t.Parallel()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name string
		rec  kftest.Record
		kind string
		tags map[string]string
		none []string
		code int
		err  string
	}{
		{
			name: "first sync",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/sync_msg", Status: 200,
				Request:  raw(`{"token":"…","open_kfid":"wk1","limit":1000}`),
				Response: raw(`{"errcode":0,"errmsg":"ok","next_cursor":"AQAAAAAAAAAAAAAAAAAAAAAAxyz12","has_more":1,"msg_list":[{"msgtype":"text"},{"msgtype":"event","event":{"event_type":"enter_session"}},{"msgtype":"text"}]}`)},
			kind: "sync",
			tags: map[string]string{"cursor": "(none)", "token": "callback", "has_more": "1", "msgs": "3 · enter_session×1, text×2", "next": "AQAA…yz12"},
		},
		{
			name: "sync refused before its body was read",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/sync_msg", Status: 200, ErrCode: 42001,
				Response: raw(`{"errcode":42001,"errmsg":"access_token expired"}`)},
			kind: "sync", code: 42001, err: "access_token expired",
			none: []string{"cursor", "token", "msgs"},
		},
		{
			name: "send",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/send_msg", Status: 200,
				Request:  raw(`{"touser":"alice","open_kfid":"wk1","msgid":"abc_0","msgtype":"text","text":{"content":"héllo"}}`),
				Response: raw(`{"errcode":0,"errmsg":"ok","msgid":"abc_0"}`)},
			kind: "send",
			tags: map[string]string{"to": "alice", "msgid": "abc_0", "msgtype": "text", "bytes": "6"},
		},
		{
			name: "duplicate send",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/send_msg", Status: 200, ErrCode: 40058,
				Request:  raw(`{"touser":"alice","msgid":"abc_0","msgtype":"image","image":{"media_id":"m"}}`),
				Response: raw(`{"errcode":40058,"errmsg":"invalid parameter: msgid duplicated"}`)},
			kind: "send", code: 40058, err: "invalid parameter: msgid duplicated",
			tags: map[string]string{"msgid": "abc_0", "msgtype": "image"},
			none: []string{"bytes"},
		},
		{
			name: "dropped connection",
			rec:  kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/send_msg", Err: "connection dropped"},
			kind: "send", err: "connection dropped", none: []string{"to", "msgid"},
		},
		{
			name: "gettoken",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/gettoken", Status: 200, Query: "corpid=ww1&corpsecret=%E2%80%A6",
				Response: raw(`{"errcode":0,"errmsg":"ok","access_token":"…","expires_in":7200}`)},
			kind: "token", tags: map[string]string{"expires_in": "7200 s"},
		},
		{
			name: "state",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/kf/service_state/get", Status: 200,
				Request:  raw(`{"open_kfid":"wk1","external_userid":"bob"}`),
				Response: raw(`{"errcode":0,"errmsg":"ok","service_state":3,"servicer_userid":"zhang"}`)},
			kind: "state", tags: map[string]string{"customer": "bob", "state": "3 human"},
		},
		{
			name: "callback refused",
			rec:  kftest.Record{Kind: kftest.RecordCallback, Method: http.MethodPost, Path: "/wxkf/", Status: 503},
			kind: "callback", err: "answered HTTP 503", tags: map[string]string{"HTTP": "503"},
		},
		{
			name: "upload",
			rec: kftest.Record{Kind: kftest.RecordAPI, Path: "/cgi-bin/media/upload", Status: 200,
				Request:  raw(`{"type":"image","filename":"image.png","size":2048}`),
				Response: raw(`{"errcode":0,"errmsg":"ok","type":"image","media_id":"3abcdefghijklmnopqrstuvwxyz","created_at":"1"}`)},
			kind: "media", tags: map[string]string{"type": "image", "size": "2.0 KB", "media_id": "3abc…wxyz"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := recordToLog(tc.rec)
			assert.Equal(t, tc.kind, l.Kind)
			assert.Equal(t, tc.code, l.ErrCode)
			assert.Equal(t, tc.err, l.Err)
			for k, v := range tc.tags {
				assert.Equal(t, v, tagValue(l, k), "tag %s", k)
			}
			for _, k := range tc.none {
				assert.Empty(t, tagValue(l, k), "tag %s must be absent", k)
			}
		})
	}
}

func TestCapJSON(t *testing.T) {
	t.Parallel()
	small := json.RawMessage(`{"a":1}`)
	assert.Equal(t, small, capJSON(small))
	big := json.RawMessage(`{"a":"` + string(make([]byte, maxLoggedJSON)) + `"}`)
	out := capJSON(big)
	assert.True(t, json.Valid(out))
	assert.Less(t, len(out), 100)
}

func TestMediaKindOf(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "image", mediaKindOf(testPNG(t, 4, 4)))
	assert.Equal(t, "voice", mediaKindOf(sampleVoice))
	assert.Equal(t, "file", mediaKindOf([]byte("just some text")))
	mp4 := append([]byte{0, 0, 0, 24}, []byte("ftypisom\x00\x00\x02\x00isommp41")...)
	assert.Equal(t, "video", mediaKindOf(mp4))
}
