package kftest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func menuItems(n int) []obj {
	out := make([]obj, n)
	for i := range out {
		out[i] = obj{"type": "click", "click": obj{"id": fmt.Sprint(i), "content": fmt.Sprint("option ", i)}}
	}
	return out
}

// Every validation of a send_msg body (§6), one row per rule. The customer has just messaged.
func TestSendMsgValidation(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	img := srv.PutMedia("image", "a.png", pngBytes(t, 2, 2))
	voice := srv.PutMedia("voice", "a.amr", amrBytes(5, 7))
	video := srv.PutMedia("video", "a.mp4", mp4Bytes(100))
	file := srv.PutMedia("file", "a.txt", []byte("abcdef"))
	zh := strings.Repeat("中", 682) // 2046 bytes

	link := func(mod func(obj)) obj {
		l := obj{"title": "t", "desc": "d", "url": "https://example.com/x", "thumb_media_id": img}
		mod(l)
		return obj{"msgtype": "link", "link": l}
	}
	mini := func(mod func(obj)) obj {
		m := obj{"appid": "wx123", "title": "t", "thumb_media_id": img, "pagepath": "pages/index"}
		mod(m)
		return obj{"msgtype": "miniprogram", "miniprogram": m}
	}
	menu := func(head string, list []obj, tail string) obj {
		return obj{"msgtype": "msgmenu", "msgmenu": obj{"head_content": head, "list": list, "tail_content": tail}}
	}
	tests := []struct {
		name string
		body obj
		code int
	}{
		{"text ok", obj{"msgtype": "text", "text": obj{"content": "hello"}}, 0},
		{"no touser", obj{"touser": "", "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeInvalidExternalUserID},
		{"no open_kfid", obj{"open_kfid": "", "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeMissingOpenKfID},
		{"unknown open_kfid", obj{"open_kfid": "wkunknown", "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeInvalidOpenKfID},
		{"no msgtype", obj{"text": obj{"content": "x"}}, kftest.CodeInvalidMsgType},
		{"unknown msgtype", obj{"msgtype": "sticker", "sticker": obj{}}, kftest.CodeInvalidMsgType},
		{"business_card not sendable", obj{"msgtype": "business_card", "business_card": obj{"userid": "u"}}, kftest.CodeInvalidMsgType},
		{"text empty", obj{"msgtype": "text", "text": obj{"content": ""}}, kftest.CodeEmptyText},
		{"text body missing", obj{"msgtype": "text"}, kftest.CodeEmptyText},
		{"text 2048 bytes", obj{"msgtype": "text", "text": obj{"content": strings.Repeat("a", 2048)}}, 0},
		{"text 2049 bytes", obj{"msgtype": "text", "text": obj{"content": strings.Repeat("a", 2049)}}, kftest.CodeContentTooLong},
		{"text 2046 bytes of CJK", obj{"msgtype": "text", "text": obj{"content": zh}}, 0},
		{"text 2049 bytes of CJK", obj{"msgtype": "text", "text": obj{"content": zh + "中"}}, kftest.CodeContentTooLong},
		{"image ok", obj{"msgtype": "image", "image": obj{"media_id": img}}, 0},
		{"voice ok", obj{"msgtype": "voice", "voice": obj{"media_id": voice}}, 0},
		{"image unknown media", obj{"msgtype": "image", "image": obj{"media_id": "3nope"}}, kftest.CodeInvalidMediaID},
		{"image empty media", obj{"msgtype": "image", "image": obj{"media_id": ""}}, kftest.CodeInvalidMediaID},
		{"image body missing", obj{"msgtype": "image"}, kftest.CodeInvalidParameter},
		{"image with a voice media_id", obj{"msgtype": "image", "image": obj{"media_id": voice}}, kftest.CodeInvalidMediaID},
		{"video with a file media_id", obj{"msgtype": "video", "video": obj{"media_id": file}}, kftest.CodeInvalidMediaID},
		{"file with a video media_id", obj{"msgtype": "file", "file": obj{"media_id": video}}, kftest.CodeInvalidMediaID},
		{"menu 10 items", menu("h", menuItems(10), "t"), 0},
		{"menu 11 items", menu("h", menuItems(11), "t"), kftest.CodeTooManyMenuItems},
		{"menu bad item type", menu("h", []obj{{"type": "button", "button": obj{"content": "x"}}}, ""), kftest.CodeInvalidMenuType},
		{"menu all item types", menu("", []obj{
			{"type": "click", "click": obj{"id": "1", "content": "c"}},
			{"type": "view", "view": obj{"url": "https://example.com", "content": "v"}},
			{"type": "miniprogram", "miniprogram": obj{"appid": "wx1", "pagepath": "p", "content": "m"}},
			{"type": "text", "text": obj{"content": "plain", "no_newline": 1}},
		}, ""), 0},
		{"menu click without content", menu("h", []obj{{"type": "click", "click": obj{"id": "1"}}}, ""), kftest.CodeInvalidParameter},
		{"menu click body missing", menu("h", []obj{{"type": "click"}}, ""), kftest.CodeInvalidParameter},
		{"menu view ftp url", menu("h", []obj{{"type": "view", "view": obj{"url": "ftp://x", "content": "v"}}}, ""), kftest.CodeInvalidParameter},
		{"menu head 1024 bytes", menu(strings.Repeat("h", 1024), menuItems(1), ""), 0},
		{"menu head 1025 bytes", menu(strings.Repeat("h", 1025), menuItems(1), ""), kftest.CodeContentTooLong},
		{"menu tail 1025 bytes", menu("", menuItems(1), strings.Repeat("t", 1025)), kftest.CodeContentTooLong},
		{"menu empty", menu("", nil, ""), kftest.CodeInvalidParameter},
		{"link ok", link(func(obj) {}), 0},
		{"link title 128", link(func(l obj) { l["title"] = strings.Repeat("t", 128) }), 0},
		{"link title 129", link(func(l obj) { l["title"] = strings.Repeat("t", 129) }), kftest.CodeContentTooLong},
		{"link desc 513", link(func(l obj) { l["desc"] = strings.Repeat("d", 513) }), kftest.CodeContentTooLong},
		{"link url 2049", link(func(l obj) { l["url"] = "https://e.com/" + strings.Repeat("u", 2035) }), kftest.CodeContentTooLong},
		{"link url not http", link(func(l obj) { l["url"] = "javascript:alert(1)" }), kftest.CodeInvalidParameter},
		{"link no title", link(func(l obj) { delete(l, "title") }), kftest.CodeInvalidParameter},
		{"link thumb not an image", link(func(l obj) { l["thumb_media_id"] = file }), kftest.CodeInvalidMediaID},
		{"miniprogram ok", mini(func(obj) {}), 0},
		{"miniprogram title 65", mini(func(m obj) { m["title"] = strings.Repeat("t", 65) }), kftest.CodeContentTooLong},
		{"miniprogram no appid", mini(func(m obj) { delete(m, "appid") }), kftest.CodeInvalidParameter},
		{"miniprogram no thumb", mini(func(m obj) { delete(m, "thumb_media_id") }), kftest.CodeInvalidParameter},
		{"location ok", obj{"msgtype": "location", "location": obj{"name": "n", "address": "a", "latitude": 23.1, "longitude": 113.3}}, 0},
		{"location no latitude", obj{"msgtype": "location", "location": obj{"longitude": 113.3}}, kftest.CodeInvalidParameter},
		{"location out of range", obj{"msgtype": "location", "location": obj{"latitude": 91, "longitude": 0}}, kftest.CodeInvalidParameter},
		{"ca_link ok", obj{"msgtype": "ca_link", "ca_link": obj{"link_url": "https://work.weixin.qq.com/ca/x"}}, 0},
		{"ca_link missing url", obj{"msgtype": "ca_link", "ca_link": obj{}}, kftest.CodeInvalidParameter},
		{"client msgid 32 bytes", obj{"msgid": strings.Repeat("a", 32), "msgtype": "text", "text": obj{"content": "x"}}, 0},
		{"client msgid 33 bytes", obj{"msgid": strings.Repeat("b", 33), "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeInvalidParameter},
		{"client msgid bad char", obj{"msgid": "a.b", "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeInvalidParameter},
		{"client msgid non-ASCII", obj{"msgid": "消息", "msgtype": "text", "text": obj{"content": "x"}}, kftest.CodeInvalidParameter},
		{"client msgid all allowed chars", obj{"msgid": "AZaz09_-", "msgtype": "text", "text": obj{"content": "x"}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.AddText(customer, "again") // keep the quota from interfering
			r := a.send(tc.body)
			assert.Equal(t, tc.code, r.Code, r.Msg)
			if tc.code == 0 {
				assert.NotEmpty(t, r.str("msgid"))
			}
		})
	}
}

func TestSendMsgRawTextEncoding(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	kfid := srv.OpenKfID()
	tests := []struct {
		name string
		body string
		code int
	}{
		{"invalid UTF-8 in content", "{\"touser\":\"" + customer + "\",\"open_kfid\":\"" + kfid + "\",\"msgtype\":\"text\",\"text\":{\"content\":\"a\xc3\"}}", kftest.CodeDataFormat},
		{"lone surrogate escape", `{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"text","text":{"content":"\ud83d"}}`, kftest.CodeDataFormat},
		{"escaped emoji pair", `{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"text","text":{"content":"\ud83d\ude00"}}`, 0},
		{"content is a number", `{"touser":"` + customer + `","open_kfid":"` + kfid + `","msgtype":"text","text":{"content":5}}`, kftest.CodeDataFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.code, a.post("/cgi-bin/kf/send_msg", tc.body).Code)
		})
	}
	s := srv.Sent()
	require.Len(t, s, 1)
	assert.Equal(t, "😀", s[0].Text)
}

func TestSendMsgMediaExpires(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithTokenTTL(1000*time.Hour))
	img := srv.PutMedia("image", "a.png", pngBytes(t, 2, 2))
	clk.Advance(72*time.Hour + time.Second)
	srv.AddText(customer, "hi")
	assert.Equal(t, kftest.CodeInvalidMediaID, a.send(obj{"msgtype": "image", "image": obj{"media_id": img}}).Code)
}

func TestSendMsgClientMsgIDUniquePerAccount(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	other := srv.AddAccount("other")
	srv.AddText(customer, "hi")
	srv.AddMessage(kftest.Message{OpenKfID: other, ExternalUserID: customer, MsgType: "text", Body: obj{"content": "hi"}})

	body := func(kfid, id, content string) obj {
		return obj{"open_kfid": kfid, "msgid": id, "msgtype": "text", "text": obj{"content": content}}
	}
	r := a.send(body(srv.OpenKfID(), "reply-1", "one"))
	require.Equal(t, 0, r.Code)
	assert.Equal(t, "reply-1", r.str("msgid"), "a given msgid is answered back")

	r = a.send(body(srv.OpenKfID(), "reply-1", "one again"))
	assert.Equal(t, kftest.DuplicateMsgIDCode, r.Code)
	assert.Contains(t, r.Msg, "msgid duplicated")

	assert.Equal(t, 0, a.send(body(other, "reply-1", "other account")).Code, "unique per account, not per corp")

	// A rejected send does not use up its msgid.
	r = a.send(obj{"msgid": "reply-2", "msgtype": "text", "text": obj{"content": ""}})
	require.Equal(t, kftest.CodeEmptyText, r.Code)
	assert.Equal(t, 0, a.send(body(srv.OpenKfID(), "reply-2", "now")).Code)

	// Sends without a msgid get distinct server ids.
	r1, r2 := a.sendText(customer, "a"), a.sendText(customer, "b")
	assert.NotEqual(t, r1.str("msgid"), r2.str("msgid"))
	assert.Len(t, srv.SentTo(srv.OpenKfID(), customer), 4)
}

// Retrying an accepted send (same client msgid) answers "duplicated" even when the quota is used up,
// so an idempotent client can tell "already sent" from "over the limit".
func TestSendMsgDuplicateBeforeQuota(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "hi")
	for i := range 5 {
		require.Equal(t, 0, a.send(obj{"msgid": fmt.Sprint("r", i), "msgtype": "text", "text": obj{"content": "x"}}).Code)
	}
	assert.Equal(t, kftest.DuplicateMsgIDCode, a.send(obj{"msgid": "r4", "msgtype": "text", "text": obj{"content": "x"}}).Code)
	assert.Equal(t, kftest.CodeQuotaExceeded, a.send(obj{"msgid": "r5", "msgtype": "text", "text": obj{"content": "x"}}).Code)
}

func TestSendMsgSessionState(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	tests := []struct {
		state int
		code  int
	}{
		{kftest.StateNew, 0},
		{kftest.StateAssist, 0},
		{kftest.StateQueued, kftest.CodeStateForbidsSend},
		{kftest.StateServicer, kftest.CodeStateForbidsSend},
		{kftest.StateEnded, kftest.CodeSessionEnded},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("state ", tc.state), func(t *testing.T) {
			user := fmt.Sprint("wmState", tc.state)
			srv.AddText(user, "hi")
			srv.SetServiceState(srv.OpenKfID(), user, tc.state, "zhangsan")
			assert.Equal(t, tc.code, a.sendText(user, "reply").Code)
		})
	}
}

func TestSendMsgReplyWindow(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithTokenTTL(1000*time.Hour))

	assert.Equal(t, kftest.CodeNoConsultation, a.sendText("wmNever", "hello?").Code, "customer never messaged")

	srv.AddMessage(kftest.Message{ExternalUserID: customer, MsgType: "text", Body: obj{"content": "x"},
		SendTime: t0.Add(-47 * time.Hour)})
	assert.Equal(t, 0, a.sendText(customer, "in time").Code)

	clk.Advance(time.Hour + time.Second) // now 48 h + 1 s after the customer's message
	assert.Equal(t, kftest.CodeWindowExpired, a.sendText(customer, "too late").Code)
	assert.Equal(t, 0, srv.QuotaLeft(srv.OpenKfID(), customer))

	// An older message added later does not reopen the window; a new one does.
	srv.AddMessage(kftest.Message{ExternalUserID: customer, MsgType: "text", Body: obj{"content": "x"},
		SendTime: t0.Add(-50 * time.Hour)})
	assert.Equal(t, kftest.CodeWindowExpired, a.sendText(customer, "still late").Code)
	srv.AddText(customer, "back")
	assert.Equal(t, 0, a.sendText(customer, "welcome back").Code)
}

func TestSendMsgQuota(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	srv.AddText(customer, "hi")
	assert.Equal(t, 5, srv.QuotaLeft(kfid, customer))
	for i := range 5 {
		require.Equal(t, 0, a.sendText(customer, fmt.Sprint(i)).Code, "send %d", i+1)
		assert.Equal(t, 4-i, srv.QuotaLeft(kfid, customer))
	}
	r := a.sendText(customer, "sixth")
	assert.Equal(t, kftest.CodeQuotaExceeded, r.Code)

	// Servicer messages and system events do not reset the quota; a customer message does.
	srv.AddServicerText(customer, "zhangsan", "human")
	srv.AddEvent("user_recall_msg", obj{"external_userid": customer, "recall_msgid": "x"})
	assert.Equal(t, kftest.CodeQuotaExceeded, a.sendText(customer, "still sixth").Code)
	srv.AddText(customer, "again")
	assert.Equal(t, 5, srv.QuotaLeft(kfid, customer))
	assert.Equal(t, 0, a.sendText(customer, "reset").Code)

	// Quotas are per customer.
	srv.AddText(other, "me too")
	assert.Equal(t, 5, srv.QuotaLeft(kfid, other))

	sent := srv.SentTo(kfid, customer)
	require.Len(t, sent, 6)
	for i := range 5 {
		assert.Equal(t, fmt.Sprint(i), sent[i].Text)
	}
	assert.Equal(t, "reset", sent[5].Text)
	assert.Empty(t, srv.SentTo(kfid, other))
}

func TestSentRecords(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	kfid := srv.OpenKfID()
	srv.AddText(customer, "hi")
	srv.AddText(other, "hi")
	img := srv.PutMedia("image", "a.png", pngBytes(t, 2, 2))
	require.Equal(t, 0, a.send(obj{"msgid": "c1", "msgtype": "text", "text": obj{"content": "one"}}).Code)
	require.Equal(t, 0, a.send(obj{"touser": other, "msgtype": "image", "image": obj{"media_id": img}}).Code)
	require.Equal(t, 0, a.sendText(customer, "two").Code)

	all := srv.Sent()
	require.Len(t, all, 3)
	s := all[0]
	assert.Equal(t, kfid, s.OpenKfID)
	assert.Equal(t, customer, s.ToUser)
	assert.Equal(t, "c1", s.MsgID)
	assert.Equal(t, "c1", s.ClientMsgID)
	assert.Equal(t, "text", s.MsgType)
	assert.Equal(t, "one", s.Text)
	assert.False(t, s.OnEvent)
	assert.Equal(t, t0, s.At)
	var body map[string]any
	require.NoError(t, json.Unmarshal(s.Body, &body))
	assert.Equal(t, "text", body["msgtype"])

	assert.Equal(t, img, all[1].MediaID)
	assert.Equal(t, other, all[1].ToUser)
	assert.Empty(t, all[2].ClientMsgID)
	assert.NotEmpty(t, all[2].MsgID)

	to := srv.SentTo(kfid, customer)
	require.Len(t, to, 2)
	assert.Equal(t, []string{"one", "two"}, []string{to[0].Text, to[1].Text})

	rj := srv.Rejected()
	assert.Empty(t, rj)
	a.sendText(customer, "")
	rj = srv.Rejected()
	require.Len(t, rj, 1)
	assert.Equal(t, "/cgi-bin/kf/send_msg", rj[0].Path)
	assert.Equal(t, kftest.CodeEmptyText, rj[0].Code)
	assert.Contains(t, string(rj[0].Body), `"msgtype":"text"`)
	assert.Equal(t, 4, srv.Calls("/cgi-bin/kf/send_msg"), "3 accepted + 1 rejected")
}
