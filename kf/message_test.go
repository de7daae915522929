package kf_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

func loadAllTypesPage(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/sync_msg_all_types.json")
	require.NoError(t, err)
	return b
}

func decodePage(t *testing.T, b []byte) kf.SyncMsgResponse {
	t.Helper()
	var page kf.SyncMsgResponse
	require.NoError(t, json.Unmarshal(b, &page))
	return page
}

func byID(t *testing.T, page kf.SyncMsgResponse) map[string]kf.Message {
	t.Helper()
	m := make(map[string]kf.Message, len(page.Messages))
	for _, msg := range page.Messages {
		m[msg.MsgID] = msg
	}
	return m
}

// Every msgtype of §4 and every event of §5 decodes into its typed body.
func TestDecodeEveryMsgTypeAndEvent(t *testing.T) {
	t.Parallel()
	page := decodePage(t, loadAllTypesPage(t))
	require.Len(t, page.Messages, 24, "one bad or unknown message must not drop or fail the page")
	assert.Equal(t, "4gw7MepFLfgF2VC5npN", page.NextCursor)
	assert.True(t, page.HasMore)
	m := byID(t, page)

	text := m["from_text"]
	assert.Equal(t, "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q", text.OpenKfID)
	assert.Equal(t, "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw", text.ExternalUserID)
	assert.Equal(t, time.Unix(1615478585, 0), text.SendTime)
	assert.Equal(t, kf.OriginCustomer, text.Origin)
	assert.Equal(t, kf.MsgTypeText, text.MsgType)
	require.NotNil(t, text.Text)
	assert.Equal(t, kf.Text{Content: "hello 你好", MenuID: "101"}, *text.Text)
	assert.Nil(t, text.Raw)

	require.NotNil(t, m["from_image"].Image)
	assert.Equal(t, "2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvgw", m["from_image"].Image.MediaID)
	assert.Equal(t, "voice_media", m["from_voice"].Voice.MediaID)
	assert.Equal(t, "video_media", m["from_video"].Video.MediaID)
	assert.Equal(t, "file_media", m["from_file"].File.MediaID)

	loc := m["from_location"].Location
	require.NotNil(t, loc)
	assert.InDelta(t, 23.1060218811035, loc.Latitude, 1e-9)
	assert.InDelta(t, 113.320503234863, loc.Longitude, 1e-9)
	assert.Equal(t, "广州国际媒体港(广州市海珠区)", loc.Name)
	assert.Equal(t, "广东省广州市海珠区滨江东路", loc.Address)

	assert.Equal(t, kf.Link{Title: "TITLE", Desc: "DESC", URL: "http://www.qq.com", PicURL: "http://wx.qlogo.cn/pic"}, *m["from_link"].Link)
	assert.Equal(t, "zhangsan", m["from_card"].BusinessCard.UserID)
	assert.Equal(t, kf.MiniProgram{Title: "TITLE", AppID: "wx123123123123", PagePath: "PAGE_PATH", ThumbMediaID: "THUMB_MEDIA_ID"}, *m["from_mini"].MiniProgram)

	menu := m["from_menu"]
	assert.Equal(t, kf.OriginServicer, menu.Origin)
	assert.Equal(t, "zhangsan", menu.ServicerUserID)
	require.NotNil(t, menu.MsgMenu)
	assert.Equal(t, "欢迎再次光临", menu.MsgMenu.TailContent)
	require.Len(t, menu.MsgMenu.List, 4)
	assert.Equal(t, kf.MenuClick("101", "满意"), menu.MsgMenu.List[0])
	assert.Equal(t, kf.MenuView("https://work.weixin.qq.com", "点击跳转到自助查询页面"), menu.MsgMenu.List[1])
	assert.Equal(t, kf.MenuMiniProgram("wx123123123123123", "pages/index?userid=zhangsan&orderid=123123123", "点击打开小程序查询更多"), menu.MsgMenu.List[2])
	assert.Equal(t, kf.MenuText("纯文本，支持\n换行", true), menu.MsgMenu.List[3])

	assert.Equal(t, kf.ChannelsShopProduct{ProductID: "10000001", HeadImage: "https://img/head.jpg", Title: "Product",
		SalesPrice: "1000", ShopNickname: "Shop", ShopHeadImage: "https://img/shop.jpg"}, *m["from_product"].ChannelsShopProduct)
	assert.Equal(t, kf.ChannelsShopOrder{OrderID: "3705115058471208928", ProductTitles: "A,B", PriceWording: "¥10.00",
		State: "待发货", ImageURL: "https://img/order.jpg", ShopNickname: "Shop"}, *m["from_order"].ChannelsShopOrder)
	assert.Equal(t, kf.Channels{SubType: kf.ChannelsFeed, Nickname: "Channel", Title: "Feed title"}, *m["from_channels"].Channels)

	// merged_msg: the msg_content JSON strings are decoded.
	merged := m["from_merged"].MergedMsg
	require.NotNil(t, merged)
	assert.Equal(t, "Chat record", merged.Title)
	require.Len(t, merged.Items, 4)
	assert.Equal(t, time.Unix(1615478500, 0), merged.Items[0].SendTime)
	assert.Equal(t, "Alice", merged.Items[0].SenderName)
	require.NotNil(t, merged.Items[0].Text, "msg_content keyed by msgtype")
	assert.Equal(t, "hi there", merged.Items[0].Text.Content)
	require.NotNil(t, merged.Items[1].Image, "msg_content as the bare body")
	assert.Equal(t, "merged_image", merged.Items[1].Image.MediaID)
	assert.JSONEq(t, `{"id":1}`, string(merged.Items[2].Raw), "unknown item type kept raw")
	assert.Nil(t, merged.Items[3].Text, "non-JSON msg_content")
	assert.Equal(t, "not json", merged.Items[3].MsgContent)

	// An unknown msgtype keeps its body raw and typed fields nil.
	meeting := m["from_meeting"]
	assert.Equal(t, kf.MsgType("meeting"), meeting.MsgType)
	assert.False(t, meeting.MsgType.Known())
	assert.JSONEq(t, `{"meetingid":"hybkDeCQAAyeJ","title":"Weekly"}`, string(meeting.Raw))

	// Events.
	ev := func(id string) *kf.Event {
		msg := m[id]
		assert.Equal(t, kf.OriginSystem, msg.Origin, id)
		assert.Equal(t, kf.MsgTypeEvent, msg.MsgType, id)
		require.NotNil(t, msg.Event, id)
		return msg.Event
	}
	enter := ev("from_enter")
	assert.Equal(t, kf.EventEnterSession, enter.EventType)
	assert.Equal(t, "wkA", enter.OpenKfID)
	assert.Equal(t, "wmA", enter.ExternalUserID)
	assert.Equal(t, "123", enter.Scene)
	assert.Equal(t, "abc", enter.SceneParam)
	assert.Equal(t, "aaaaaa", enter.WelcomeCode)
	assert.Equal(t, &kf.WechatChannels{Nickname: "Channel", ShopNickname: "Shop", Scene: 1}, enter.WechatChannels)
	assert.Nil(t, enter.Raw)

	fail := ev("from_fail")
	assert.Equal(t, kf.EventMsgSendFail, fail.EventType)
	assert.Equal(t, "FAIL_MSGID", fail.FailMsgID)
	assert.Equal(t, kf.FailSessionExpired, fail.FailType)
	assert.Equal(t, "session expired (48 h)", fail.FailType.String())

	ss := ev("from_servicer_status")
	assert.Equal(t, kf.EventServicerStatusChange, ss.EventType)
	assert.Equal(t, "zhangsan", ss.ServicerUserID)
	assert.Equal(t, kf.ServicerStopped, ss.Status)
	assert.Equal(t, 1, ss.StopType)

	sess := ev("from_session_status")
	assert.Equal(t, kf.EventSessionStatusChange, sess.EventType)
	assert.Equal(t, kf.SessionEnded, sess.ChangeType)
	assert.Equal(t, "zhangsan", sess.OldServicerUserID)
	assert.Equal(t, "MSG_CODE", sess.MsgCode)

	ur := ev("from_user_recall")
	assert.Equal(t, kf.EventUserRecallMsg, ur.EventType)
	assert.Equal(t, "RECALL_MSGID", ur.RecallMsgID)
	sr := ev("from_servicer_recall")
	assert.Equal(t, kf.EventServicerRecallMsg, sr.EventType)
	assert.Equal(t, "lisi", sr.ServicerUserID)
	assert.Equal(t, "RECALL_MSGID2", sr.RecallMsgID)

	rj := ev("from_reject")
	assert.Equal(t, kf.EventRejectCustomerMsgSwitchChange, rj.EventType)
	assert.Equal(t, 1, rj.RejectSwitch)

	future := ev("from_future_event")
	assert.Equal(t, kf.EventType("brand_new_event"), future.EventType)
	assert.Equal(t, "wkA", future.OpenKfID, "common fields of an unknown event still decode")
	assert.JSONEq(t, `{"event_type":"brand_new_event","open_kfid":"wkA","mystery":{"x":[1,2,3]}}`, string(future.Raw))

	// A known msgtype with a body of the wrong shape: common fields kept, typed nil, Raw set.
	bad := m["from_bad_location"]
	assert.Equal(t, kf.MsgTypeLocation, bad.MsgType)
	assert.Equal(t, "wmA", bad.ExternalUserID)
	assert.Equal(t, time.Unix(1615478608, 0), bad.SendTime)
	assert.Nil(t, bad.Location)
	assert.JSONEq(t, `{"latitude":"23.1","longitude":113.3,"name":"n"}`, string(bad.Raw))
}

// The page decoder's fast path (no repair needed) and the single-message decoder agree.
func TestDecodeFastPathMatchesPerMessage(t *testing.T) {
	t.Parallel()
	page := decodePage(t, loadAllTypesPage(t))
	var raw struct {
		MsgList []json.RawMessage `json:"msg_list"`
	}
	require.NoError(t, json.Unmarshal(loadAllTypesPage(t), &raw))
	require.Len(t, raw.MsgList, len(page.Messages))
	for i, r := range raw.MsgList {
		var one kf.Message
		require.NoError(t, json.Unmarshal(r, &one))
		assert.Equal(t, one, page.Messages[i], "message %d", i)
	}

	// A page of only known types takes the fast path and gives the same result.
	var known []json.RawMessage
	for i, msg := range page.Messages {
		if msg.Raw == nil && (msg.Event == nil || msg.Event.Raw == nil) {
			known = append(known, raw.MsgList[i])
		}
	}
	b, err := json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "next_cursor": "c", "has_more": 0, "msg_list": known})
	require.NoError(t, err)
	fast := decodePage(t, b)
	assert.False(t, fast.HasMore)
	require.Len(t, fast.Messages, len(known))
	for _, msg := range fast.Messages {
		var one kf.Message
		require.NoError(t, json.Unmarshal(mustJSON(t, msg), &one))
		assert.Equal(t, msg, one)
	}
}

// Marshalling a decoded page and decoding it again gives the same messages (Raw bodies included).
func TestMessageJSONRoundTrip(t *testing.T) {
	t.Parallel()
	page := decodePage(t, loadAllTypesPage(t))
	b, err := json.Marshal(page)
	require.NoError(t, err)
	again := decodePage(t, b)
	require.Equal(t, len(page.Messages), len(again.Messages))
	for i := range page.Messages {
		a, b := page.Messages[i], again.Messages[i]
		if a.MergedMsg != nil {
			// MsgContent strings survive verbatim; bodies decode from them again.
			require.NotNil(t, b.MergedMsg)
			assert.Equal(t, a.MergedMsg.Items, b.MergedMsg.Items)
		}
		assert.Equal(t, a, b, "message %s", a.MsgID)
	}
	var env map[string]any
	require.NoError(t, json.Unmarshal(b, &env))
	assert.EqualValues(t, 0, env["errcode"])
	assert.EqualValues(t, 1, env["has_more"], "has_more is 0/1 on the wire")

	// send_time is unix seconds on the wire; zero time ↔ 0.
	one, err := json.Marshal(kf.Message{MsgID: "x", MsgType: kf.MsgTypeText, SendTime: time.Unix(1700000000, 0), Body: kf.Body{Text: &kf.Text{Content: "a"}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"msgid":"x","open_kfid":"","send_time":1700000000,"origin":0,"msgtype":"text","text":{"content":"a"}}`, string(one))
	var back kf.Message
	require.NoError(t, json.Unmarshal([]byte(`{"msgid":"y","msgtype":"text","text":{"content":"b"}}`), &back))
	assert.True(t, back.SendTime.IsZero())

	// An unknown type built by hand marshals its Raw under the msgtype key.
	custom, err := json.Marshal(kf.Message{MsgID: "z", MsgType: "note", Body: kf.Body{Raw: json.RawMessage(`{"a":1}`)}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"msgid":"z","open_kfid":"","send_time":0,"origin":0,"msgtype":"note","note":{"a":1}}`, string(custom))
	_, err = json.Marshal(kf.Message{MsgType: "note", Body: kf.Body{Raw: json.RawMessage(`{bad`)}})
	require.Error(t, err)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// Malformed items never fail the page; only a malformed envelope does.
func TestDecodePageTolerance(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		list  string
		check func(t *testing.T, msgs []kf.Message)
	}{
		{"not an object", `[1, {"msgid":"ok","msgtype":"text","text":{"content":"x"}}]`, func(t *testing.T, msgs []kf.Message) {
			require.Len(t, msgs, 2)
			assert.Equal(t, json.RawMessage("1"), msgs[0].Raw)
			assert.Equal(t, "x", msgs[1].Text.Content)
		}},
		{"header field of the wrong type", `[{"msgid":"a","send_time":"soon","origin":3,"msgtype":"text","text":{"content":"x"}}]`, func(t *testing.T, msgs []kf.Message) {
			require.Len(t, msgs, 1)
			assert.Equal(t, "a", msgs[0].MsgID)
			assert.True(t, msgs[0].SendTime.IsZero())
			require.NotNil(t, msgs[0].Text, "the body is fine")
			assert.Equal(t, "x", msgs[0].Text.Content)
		}},
		{"body not an object", `[{"msgid":"b","msgtype":"text","text":"plain"}]`, func(t *testing.T, msgs []kf.Message) {
			assert.Nil(t, msgs[0].Text)
			assert.Equal(t, json.RawMessage(`"plain"`), msgs[0].Raw)
		}},
		{"event of the wrong shape", `[{"msgid":"c","msgtype":"event","event":{"event_type":"msg_send_fail","fail_type":"four","fail_msgid":"m"}}]`, func(t *testing.T, msgs []kf.Message) {
			require.NotNil(t, msgs[0].Event)
			assert.Equal(t, kf.EventMsgSendFail, msgs[0].Event.EventType)
			assert.Equal(t, "m", msgs[0].Event.FailMsgID)
			assert.NotNil(t, msgs[0].Event.Raw)
		}},
		{"merged_msg items of the wrong shape", `[{"msgid":"d","msgtype":"merged_msg","merged_msg":{"title":"t","item":[{"send_time":"x","msgtype":"text","msg_content":"{\"content\":5}"}]}}]`, func(t *testing.T, msgs []kf.Message) {
			require.NotNil(t, msgs[0].MergedMsg)
			require.Len(t, msgs[0].MergedMsg.Items, 1)
			it := msgs[0].MergedMsg.Items[0]
			assert.Nil(t, it.Text)
			assert.JSONEq(t, `{"content":5}`, string(it.Raw))
		}},
		{"has_more as bool, no msg_list", ``, func(t *testing.T, msgs []kf.Message) { assert.Empty(t, msgs) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := `{"errcode":0,"errmsg":"ok","next_cursor":"n","has_more":true`
			if tc.list != "" {
				body += `,"msg_list":` + tc.list
			}
			body += `}`
			page := decodePage(t, []byte(body))
			assert.True(t, page.HasMore)
			tc.check(t, page.Messages)
		})
	}

	for _, bad := range []string{`{"msg_list":{}}`, `{"next_cursor":5}`, `{"has_more":"maybe"}`, `[]`, `{"msg_list":[}`} {
		var page kf.SyncMsgResponse
		assert.Error(t, json.Unmarshal([]byte(bad), &page), bad)
	}
}

func TestOriginAndEnumStrings(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "customer", kf.OriginCustomer.String())
	assert.Equal(t, "system", kf.OriginSystem.String())
	assert.Equal(t, "servicer", kf.OriginServicer.String())
	assert.Equal(t, "Origin(9)", kf.Origin(9).String())
	assert.Equal(t, "receiving", kf.ServicerReceiving.String())
	assert.Equal(t, "taken from queue", kf.SessionTakenFromQueue.String())
	assert.Equal(t, "FailType(99)", kf.FailType(99).String())
	for f := kf.FailType(0); f <= 13; f++ { // doc 94670 lists every fail_type but 3
		assert.Equal(t, f == 3, strings.HasPrefix(f.String(), "FailType("), "fail_type %d", f)
	}
	assert.Equal(t, "no WeChat Channels bound", kf.FailChannelsNotBound.String())
	assert.Equal(t, "no WeChat Channels bound and corp not verified", kf.FailChannelsNotBoundCorpNotVerified.String())
	assert.Contains(t, kf.FailSecurity.String(), "unconfirmed")
	assert.Equal(t, "servicer", kf.ServiceStateServicer.String())
	assert.True(t, kf.ServiceStateNew.CanSend())
	assert.True(t, kf.ServiceStateAssistant.CanSend())
	for _, s := range []kf.ServiceStateValue{kf.ServiceStateQueued, kf.ServiceStateServicer, kf.ServiceStateEnded} {
		assert.False(t, s.CanSend(), s.String())
	}
	assert.True(t, kf.MsgTypeChannelsShopOrder.Known())
	assert.False(t, kf.MsgTypeCALink.Known(), "ca_link is send-only")
	assert.True(t, kf.EventRejectCustomerMsgSwitchChange.Known())
	assert.False(t, kf.EventType("kf_account_auth_change").Known())
}

// A merged_msg item built by hand (MsgContent empty) marshals its body into msg_content.
func TestMergedMsgItemMarshal(t *testing.T) {
	t.Parallel()
	it := kf.MergedMsgItem{SendTime: time.Unix(10, 0), MsgType: kf.MsgTypeText, SenderName: "A", Body: kf.Body{Text: &kf.Text{Content: "x"}}}
	b, err := json.Marshal(it)
	require.NoError(t, err)
	assert.JSONEq(t, `{"send_time":10,"msgtype":"text","sender_name":"A","msg_content":"{\"text\":{\"content\":\"x\"}}"}`, string(b))
	var back kf.MergedMsgItem
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, "x", back.Text.Content)

	raw := kf.MergedMsgItem{MsgType: "note", Body: kf.Body{Raw: json.RawMessage(`{"n":1}`)}}
	b, err = json.Marshal(raw)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &back))
	assert.JSONEq(t, `{"n":1}`, string(back.Raw))
}

// channels_shop_product: the published samples disagree on the image field names and on the type
// of sales_price; both spellings and both types decode into the typed body, never into Raw.
func TestChannelsShopProductSpellings(t *testing.T) {
	t.Parallel()
	want := kf.ChannelsShopProduct{ProductID: "P1", HeadImage: "https://img/h.jpg", Title: "T",
		SalesPrice: "1999", ShopNickname: "S", ShopHeadImage: "https://img/s.jpg"}
	for name, body := range map[string]string{
		"head_image, string price": `{"product_id":"P1","head_image":"https://img/h.jpg","title":"T","sales_price":"1999","shop_nickname":"S","shop_head_image":"https://img/s.jpg"}`,
		"head_img, number price":   `{"product_id":"P1","head_img":"https://img/h.jpg","title":"T","sales_price":1999,"shop_nickname":"S","shop_head_img":"https://img/s.jpg"}`,
		"mixed":                    `{"product_id":"P1","head_image":"","head_img":"https://img/h.jpg","title":"T","sales_price":1999,"shop_nickname":"S","shop_head_image":"https://img/s.jpg"}`,
	} {
		page := `{"errcode":0,"errmsg":"ok","msg_list":[{"msgid":"m","msgtype":"channels_shop_product","channels_shop_product":` + body + `}]}`
		var resp kf.SyncMsgResponse
		require.NoError(t, json.Unmarshal([]byte(page), &resp), name)
		m := resp.Messages[0]
		assert.Nil(t, m.Raw, name)
		require.NotNil(t, m.ChannelsShopProduct, name)
		assert.Equal(t, want, *m.ChannelsShopProduct, name)
	}

	for lit, price := range map[string]string{`0`: "0", `19.9`: "19.9", `-1`: "-1", `null`: "", `"¥19.90"`: "¥19.90"} {
		var p kf.ChannelsShopProduct
		require.NoError(t, json.Unmarshal([]byte(`{"product_id":"P","sales_price":`+lit+`}`), &p), lit)
		assert.Equal(t, price, p.SalesPrice, lit)
	}
	// A price that is neither a string nor a number is a body of the wrong shape: kept in Raw.
	var m kf.Message
	require.NoError(t, json.Unmarshal([]byte(`{"msgid":"m","msgtype":"channels_shop_product","channels_shop_product":{"product_id":"P","sales_price":{}}}`), &m))
	assert.Nil(t, m.ChannelsShopProduct)
	assert.JSONEq(t, `{"product_id":"P","sales_price":{}}`, string(m.Raw))

	b, err := json.Marshal(want)
	require.NoError(t, err)
	assert.JSONEq(t, `{"product_id":"P1","head_image":"https://img/h.jpg","title":"T","sales_price":"1999","shop_nickname":"S","shop_head_image":"https://img/s.jpg"}`, string(b))
}
