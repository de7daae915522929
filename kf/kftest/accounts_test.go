package kftest_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

type accountList struct {
	Code        int `json:"errcode"`
	AccountList []struct {
		OpenKfID        string `json:"open_kfid"`
		Name            string `json:"name"`
		Avatar          string `json:"avatar"`
		ManagePrivilege bool   `json:"manage_privilege"`
	} `json:"account_list"`
}

func TestAccounts(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	avatar := a.upload("image", "media", "a.png", pngBytes(t, 4, 4)).str("media_id")
	voice := srv.PutMedia("voice", "a.amr", amrBytes(3, 7))

	tests := []struct {
		name string
		body obj
		code int
	}{
		{"ok", obj{"name": "售后客服", "media_id": avatar}, 0},
		{"16 characters", obj{"name": strings.Repeat("客", 16), "media_id": avatar}, 0},
		{"17 characters", obj{"name": strings.Repeat("客", 17), "media_id": avatar}, kftest.CodeInvalidAccountName},
		{"empty name", obj{"name": "", "media_id": avatar}, kftest.CodeInvalidAccountName},
		{"no name", obj{"media_id": avatar}, kftest.CodeInvalidAccountName},
		{"no media", obj{"name": "x"}, kftest.CodeInvalidMediaID},
		{"unknown media", obj{"name": "x", "media_id": "3nope"}, kftest.CodeInvalidMediaID},
		{"avatar not an image", obj{"name": "x", "media_id": voice}, kftest.CodeInvalidMediaID},
	}
	for _, tc := range tests {
		r := a.post("/cgi-bin/kf/account/add", tc.body)
		assert.Equal(t, tc.code, r.Code, tc.name)
		if tc.code == 0 {
			assert.True(t, strings.HasPrefix(r.str("open_kfid"), "wk"), tc.name)
		}
	}
	for i := range 3 {
		require.Equal(t, 0, a.post("/cgi-bin/kf/account/add", obj{"name": fmt.Sprint("acc", i), "media_id": avatar}).Code)
	}
	// 1 default + 2 + 3 accounts = 6; page through them.
	var l accountList
	a.post("/cgi-bin/kf/account/list", obj{"offset": 0, "limit": 4}).into(t, &l)
	require.Equal(t, 0, l.Code)
	require.Len(t, l.AccountList, 4)
	assert.Equal(t, srv.OpenKfID(), l.AccountList[0].OpenKfID)
	assert.Equal(t, "售后客服", l.AccountList[1].Name)
	assert.NotEmpty(t, l.AccountList[1].Avatar)
	assert.True(t, l.AccountList[1].ManagePrivilege)
	a.post("/cgi-bin/kf/account/list", obj{"offset": 4, "limit": 4}).into(t, &l)
	assert.Len(t, l.AccountList, 2)
	a.get("/cgi-bin/kf/account/list", nil, true).into(t, &l)
	assert.Len(t, l.AccountList, 6, "GET (old form) lists without paging")
	for _, lim := range []int{0, 101, -1} {
		assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/account/list", obj{"offset": 0, "limit": lim}).Code, lim)
	}
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/account/list", obj{"offset": -1, "limit": 10}).Code)

	// update and delete.
	id := l.AccountList[5].OpenKfID
	assert.Equal(t, 0, a.post("/cgi-bin/kf/account/update", obj{"open_kfid": id, "name": "renamed"}).Code)
	assert.Equal(t, kftest.CodeInvalidAccountName, a.post("/cgi-bin/kf/account/update", obj{"open_kfid": id, "name": ""}).Code)
	assert.Equal(t, kftest.CodeInvalidMediaID, a.post("/cgi-bin/kf/account/update", obj{"open_kfid": id, "media_id": "3x"}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/account/update", obj{"open_kfid": id}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/account/update", obj{"open_kfid": "wkx", "name": "y"}).Code)
	a.post("/cgi-bin/kf/account/list", obj{"offset": 5, "limit": 1}).into(t, &l)
	assert.Equal(t, "renamed", l.AccountList[0].Name)
	assert.Equal(t, 0, a.post("/cgi-bin/kf/account/del", obj{"open_kfid": id}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/account/del", obj{"open_kfid": id}).Code)
	assert.Equal(t, kftest.CodeMissingOpenKfID, a.post("/cgi-bin/kf/account/del", obj{}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": id}).Code, "deleted accounts are gone")
}

func TestAddContactWay(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	tests := []struct {
		scene string
		code  int
	}{
		{"", 0},
		{"poster_2024-A", 0},
		{strings.Repeat("s", 32), 0},
		{strings.Repeat("s", 33), kftest.CodeInvalidParameter},
		{"bad scene", kftest.CodeInvalidParameter},
		{"场景", kftest.CodeInvalidParameter},
	}
	for _, tc := range tests {
		r := a.post("/cgi-bin/kf/add_contact_way", obj{"open_kfid": srv.OpenKfID(), "scene": tc.scene})
		assert.Equal(t, tc.code, r.Code, tc.scene)
		if tc.code == 0 {
			u, err := url.Parse(r.str("url"))
			require.NoError(t, err)
			assert.Equal(t, "https", u.Scheme)
			assert.Equal(t, tc.scene != "", u.Query().Has("enc_scene"), tc.scene)
		}
	}
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/add_contact_way", obj{"open_kfid": "wkx"}).Code)
}

func TestServicers(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	type result struct {
		Code       int `json:"errcode"`
		ResultList []struct {
			UserID       string `json:"userid"`
			DepartmentID int64  `json:"department_id"`
			ErrCode      int    `json:"errcode"`
		} `json:"result_list"`
	}
	var res result
	a.post("/cgi-bin/kf/servicer/add", obj{"open_kfid": kfid, "userid_list": []string{"zhangsan", "lisi", ""},
		"department_id_list": []int{2}}).into(t, &res)
	require.Equal(t, 0, res.Code)
	require.Len(t, res.ResultList, 4)
	assert.Equal(t, "zhangsan", res.ResultList[0].UserID)
	assert.Equal(t, 0, res.ResultList[0].ErrCode)
	assert.NotZero(t, res.ResultList[2].ErrCode, "empty userid fails per entry")
	assert.EqualValues(t, 2, res.ResultList[3].DepartmentID)

	srv.AddServicer("wangwu", kftest.ServicerStopped)
	type list struct {
		Code         int `json:"errcode"`
		ServicerList []struct {
			UserID       string `json:"userid"`
			Status       *int   `json:"status"`
			DepartmentID int64  `json:"department_id"`
		} `json:"servicer_list"`
	}
	var l list
	a.get("/cgi-bin/kf/servicer/list", url.Values{"open_kfid": {kfid}}, true).into(t, &l)
	require.Equal(t, 0, l.Code)
	require.Len(t, l.ServicerList, 4)
	assert.Equal(t, "zhangsan", l.ServicerList[0].UserID)
	assert.Equal(t, 0, *l.ServicerList[0].Status, "0 = receiving")
	assert.Equal(t, "wangwu", l.ServicerList[2].UserID)
	assert.Equal(t, 1, *l.ServicerList[2].Status, "1 = stopped")
	assert.EqualValues(t, 2, l.ServicerList[3].DepartmentID)

	// A servicer added through the API can take sessions.
	assert.Equal(t, 0, a.post("/cgi-bin/kf/service_state/trans", obj{"open_kfid": kfid, "external_userid": customer,
		"service_state": 3, "servicer_userid": "lisi"}).Code)

	a.post("/cgi-bin/kf/servicer/del", obj{"open_kfid": kfid, "userid_list": []string{"lisi", "nobody"}}).into(t, &res)
	require.Equal(t, 0, res.Code)
	assert.Equal(t, 0, res.ResultList[0].ErrCode)
	assert.Equal(t, kftest.CodeNotServicer, res.ResultList[1].ErrCode)

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/servicer/add", obj{"open_kfid": kfid, "userid_list": many}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/servicer/add", obj{"open_kfid": kfid}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/servicer/add", obj{"open_kfid": "wkx", "userid_list": []string{"a"}}).Code)
	assert.Equal(t, kftest.CodeMissingOpenKfID, a.get("/cgi-bin/kf/servicer/list", nil, true).Code)
	assert.Equal(t, kftest.CodeRequireGET, a.post("/cgi-bin/kf/servicer/list", obj{"open_kfid": kfid}).Code)
}

func TestCustomerBatchGet(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.EnterSession(customer, "qr", "p=1")
	srv.AddText(other, "hi")
	srv.SetCustomer(kftest.Customer{ExternalUserID: other, Nickname: "小王", Gender: 2, UnionID: "oUx"})
	type resp struct {
		Code         int `json:"errcode"`
		CustomerList []struct {
			ExternalUserID      string `json:"external_userid"`
			Nickname            string `json:"nickname"`
			Avatar              string `json:"avatar"`
			Gender              int    `json:"gender"`
			UnionID             string `json:"unionid"`
			EnterSessionContext *struct {
				Scene      string `json:"scene"`
				SceneParam string `json:"scene_param"`
			} `json:"enter_session_context"`
		} `json:"customer_list"`
		Invalid []string `json:"invalid_external_userid"`
	}
	var r resp
	a.post("/cgi-bin/kf/customer/batchget", obj{"external_userid_list": []string{customer, other, "wmghost"},
		"need_enter_session_context": 1}).into(t, &r)
	require.Equal(t, 0, r.Code)
	require.Len(t, r.CustomerList, 2)
	assert.Equal(t, customer, r.CustomerList[0].ExternalUserID)
	assert.NotEmpty(t, r.CustomerList[0].Nickname)
	assert.Equal(t, "qr", r.CustomerList[0].EnterSessionContext.Scene)
	assert.Equal(t, "p=1", r.CustomerList[0].EnterSessionContext.SceneParam)
	assert.Equal(t, "小王", r.CustomerList[1].Nickname)
	assert.Equal(t, 2, r.CustomerList[1].Gender)
	assert.Equal(t, []string{"wmghost"}, r.Invalid)

	var r2 resp
	a.post("/cgi-bin/kf/customer/batchget", obj{"external_userid_list": []string{customer}}).into(t, &r2)
	assert.Nil(t, r2.CustomerList[0].EnterSessionContext, "context only on request")

	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprint("wm", i)
	}
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/customer/batchget", obj{"external_userid_list": []string{}}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/customer/batchget", obj{"external_userid_list": many}).Code)
	assert.Equal(t, 0, a.post("/cgi-bin/kf/customer/batchget", obj{"external_userid_list": many[:100]}).Code)
}

func TestCorpQualificationAndUpgrade(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	r := a.get("/cgi-bin/kf/get_corp_qualification", nil, true)
	require.Equal(t, 0, r.Code)
	assert.Contains(t, r.Fields, "wechat_channels_binding")

	srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	var cfg struct {
		Code        int `json:"errcode"`
		MemberRange struct {
			UserIDList []string `json:"userid_list"`
		} `json:"member_range"`
		GroupChatRange struct {
			ChatIDList []string `json:"chat_id_list"`
		} `json:"groupchat_range"`
	}
	a.get("/cgi-bin/kf/customer/get_upgrade_service_config", nil, true).into(t, &cfg)
	require.Equal(t, 0, cfg.Code)
	assert.Equal(t, []string{"zhangsan"}, cfg.MemberRange.UserIDList)
	assert.Equal(t, []string{kftest.UpgradeChatID}, cfg.GroupChatRange.ChatIDList)

	srv.AddText(customer, "hi")
	tests := []struct {
		name string
		body obj
		code int
	}{
		{"member", obj{"type": 1, "member": obj{"userid": "zhangsan", "wording": "找专员"}}, 0},
		{"groupchat", obj{"type": 2, "groupchat": obj{"chat_id": kftest.UpgradeChatID, "wording": "进群"}}, 0},
		{"member missing", obj{"type": 1}, kftest.CodeInvalidParameter},
		{"chat_id missing", obj{"type": 2, "groupchat": obj{"wording": "x"}}, kftest.CodeInvalidParameter},
		{"bad type", obj{"type": 3}, kftest.CodeInvalidParameter},
		{"unknown customer", obj{"external_userid": "wmghost", "type": 1, "member": obj{"userid": "zhangsan"}}, kftest.CodeInvalidExternalUserID},
		{"unknown account", obj{"open_kfid": "wkx", "type": 1, "member": obj{"userid": "zhangsan"}}, kftest.CodeInvalidOpenKfID},
	}
	for _, tc := range tests {
		if _, ok := tc.body["open_kfid"]; !ok {
			tc.body["open_kfid"] = kfid
		}
		if _, ok := tc.body["external_userid"]; !ok {
			tc.body["external_userid"] = customer
		}
		assert.Equal(t, tc.code, a.post("/cgi-bin/kf/customer/upgrade_service", tc.body).Code, tc.name)
	}
	assert.Equal(t, 0, a.post("/cgi-bin/kf/customer/cancel_upgrade_service", obj{"open_kfid": kfid, "external_userid": customer}).Code)
	assert.Equal(t, kftest.CodeInvalidExternalUserID, a.post("/cgi-bin/kf/customer/cancel_upgrade_service", obj{"open_kfid": kfid}).Code)
}

func TestStatistics(t *testing.T) {
	t.Parallel()
	cst := time.FixedZone("CST", 8*3600)
	now := time.Date(2025, 6, 10, 15, 0, 0, 0, cst)
	clk := clockAt(now)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	kfid := srv.OpenKfID()
	day := func(d int) int64 { return time.Date(2025, 6, d, 0, 0, 0, 0, cst).Unix() }
	srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	for i := range 3 {
		srv.AddMessage(kftest.Message{ExternalUserID: fmt.Sprint("wm", i%2), MsgType: "text", Body: obj{"content": "x"},
			SendTime: time.Date(2025, 6, 8, 9, i, 0, 0, cst)})
	}
	srv.AddMessage(kftest.Message{ExternalUserID: "wm0", Origin: 5, ServicerUserID: "zhangsan", MsgType: "text",
		Body: obj{"content": "x"}, SendTime: time.Date(2025, 6, 8, 9, 30, 0, 0, cst)})

	type stat struct {
		Code          int `json:"errcode"`
		StatisticList []struct {
			StatTime  int64          `json:"stat_time"`
			Statistic map[string]any `json:"statistic"`
		} `json:"statistic_list"`
	}
	var s stat
	a.post("/cgi-bin/kf/get_corp_statistic", obj{"open_kfid": kfid, "start_time": day(7), "end_time": day(9)}).into(t, &s)
	require.Equal(t, 0, s.Code)
	require.Len(t, s.StatisticList, 3)
	assert.Equal(t, day(8), s.StatisticList[1].StatTime)
	assert.EqualValues(t, 3, s.StatisticList[1].Statistic["customer_msg_cnt"])
	assert.EqualValues(t, 2, s.StatisticList[1].Statistic["customer_cnt"])
	assert.EqualValues(t, 0, s.StatisticList[0].Statistic["customer_msg_cnt"])

	a.post("/cgi-bin/kf/get_servicer_statistic", obj{"open_kfid": kfid, "servicer_userid": "zhangsan",
		"start_time": day(8), "end_time": day(8)}).into(t, &s)
	require.Equal(t, 0, s.Code)
	require.Len(t, s.StatisticList, 1)
	assert.EqualValues(t, 1, s.StatisticList[0].Statistic["customer_cnt"])

	old := now.AddDate(0, 0, -181)
	oldDay := time.Date(old.Year(), old.Month(), old.Day(), 0, 0, 0, 0, cst).Unix()
	tests := []struct {
		name       string
		start, end any
		code       int
	}{
		{"not midnight", day(7) + 3600, day(9), kftest.CodeInvalidParameter},
		{"UTC midnight is not Beijing midnight", time.Date(2025, 6, 7, 0, 0, 0, 0, time.UTC).Unix(), day(9), kftest.CodeInvalidParameter},
		{"end before start", day(9), day(7), kftest.CodeInvalidParameter},
		{"today", day(9), day(10), kftest.CodeInvalidParameter},
		{"31 days", time.Date(2025, 5, 10, 0, 0, 0, 0, cst).Unix(), day(9), 0},
		{"32 days", time.Date(2025, 5, 9, 0, 0, 0, 0, cst).Unix(), day(9), kftest.CodeInvalidParameter},
		{"older than 180 days", oldDay, oldDay + 86400, kftest.CodeInvalidParameter},
		{"missing end", day(7), nil, kftest.CodeInvalidParameter},
	}
	for _, tc := range tests {
		body := obj{"open_kfid": kfid, "start_time": tc.start}
		if tc.end != nil {
			body["end_time"] = tc.end
		}
		assert.Equal(t, tc.code, a.post("/cgi-bin/kf/get_corp_statistic", body).Code, tc.name)
	}
	assert.Equal(t, kftest.CodeMissingOpenKfID, a.post("/cgi-bin/kf/get_corp_statistic", obj{"start_time": day(7), "end_time": day(8)}).Code)
	assert.Equal(t, kftest.CodeNotServicer, a.post("/cgi-bin/kf/get_servicer_statistic", obj{"open_kfid": kfid,
		"servicer_userid": "nobody", "start_time": day(7), "end_time": day(8)}).Code)
}

func TestKnowledge(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	type groups struct {
		Code       int    `json:"errcode"`
		NextCursor string `json:"next_cursor"`
		HasMore    int    `json:"has_more"`
		GroupList  []struct {
			GroupID   string `json:"group_id"`
			Name      string `json:"name"`
			IsDefault int    `json:"is_default"`
		} `json:"group_list"`
	}
	var g groups
	a.post("/cgi-bin/kf/knowledge/list_group", obj{}).into(t, &g)
	require.Equal(t, 0, g.Code)
	require.Len(t, g.GroupList, 1)
	def := g.GroupList[0].GroupID
	assert.Equal(t, 1, g.GroupList[0].IsDefault)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/del_group", obj{"group_id": def}).Code, "default group stays")

	gid := a.post("/cgi-bin/kf/knowledge/add_group", obj{"name": "售后"}).str("group_id")
	require.NotEmpty(t, gid)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/add_group", obj{"name": "售后"}).Code, "names unique")
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/add_group", obj{}).Code)
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/mod_group", obj{"group_id": gid, "name": "售后服务"}).Code)
	a.post("/cgi-bin/kf/knowledge/list_group", obj{"limit": 1}).into(t, &g)
	assert.Equal(t, 1, g.HasMore)
	a.post("/cgi-bin/kf/knowledge/list_group", obj{"limit": 1, "cursor": g.NextCursor}).into(t, &g)
	assert.Equal(t, "售后服务", g.GroupList[0].Name)
	assert.Equal(t, 0, g.HasMore)

	intent := obj{"group_id": gid, "question": obj{"text": obj{"content": "怎么退货"}},
		"similar_questions": obj{"items": []obj{{"text": obj{"content": "退货流程"}}}},
		"answers":           []obj{{"text": obj{"content": "七天无理由"}}}}
	iid := a.post("/cgi-bin/kf/knowledge/add_intent", intent).str("intent_id")
	require.NotEmpty(t, iid)
	for name, bad := range map[string]obj{
		"no question":   {"group_id": gid, "answers": []obj{{"text": obj{"content": "a"}}}},
		"no answers":    {"group_id": gid, "question": obj{"text": obj{"content": "q"}}},
		"empty answer":  {"group_id": gid, "question": obj{"text": obj{"content": "q"}}, "answers": []obj{{"text": obj{"content": ""}}}},
		"unknown group": {"group_id": "nope", "question": obj{"text": obj{"content": "q"}}, "answers": []obj{{"text": obj{"content": "a"}}}},
	} {
		assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/add_intent", bad).Code, name)
	}
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/mod_intent", obj{"intent_id": iid, "answers": []obj{{"text": obj{"content": "三十天"}}}}).Code)
	var il struct {
		Code       int `json:"errcode"`
		IntentList []struct {
			IntentID string `json:"intent_id"`
			Answers  []struct {
				Text struct{ Content string } `json:"text"`
			} `json:"answers"`
		} `json:"intent_list"`
	}
	a.post("/cgi-bin/kf/knowledge/list_intent", obj{"group_id": gid}).into(t, &il)
	require.Len(t, il.IntentList, 1)
	assert.Equal(t, "三十天", il.IntentList[0].Answers[0].Text.Content)

	// Attachments (doc 95972): image, video, link and mini program. list_intent names images and
	// videos by file name only and drops the mini program's thumb_media_id.
	img := srv.PutMedia("image", "退货.jpg", []byte("\xff\xd8\xff fake jpeg"))
	vid := srv.PutMedia("video", "流程.mp4", []byte("fake mp4 bytes"))
	attachments := []obj{
		{"msgtype": "image", "image": obj{"media_id": img}},
		{"msgtype": "video", "video": obj{"media_id": vid}},
		{"msgtype": "link", "link": obj{"title": "退货说明", "desc": "七天", "url": "https://example.com/r", "pic_url": "https://example.com/p.jpg"}},
		{"msgtype": "miniprogram", "miniprogram": obj{"title": "商城", "appid": "wx123", "pagepath": "/p", "thumb_media_id": img}},
	}
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/mod_intent", obj{"intent_id": iid,
		"answers": []obj{{"text": obj{"content": "见附件"}, "attachments": attachments}}}).Code)
	r := a.post("/cgi-bin/kf/knowledge/list_intent", obj{"intent_id": iid})
	var listed struct {
		IntentList []struct {
			Question json.RawMessage `json:"question"`
			Answers  json.RawMessage `json:"answers"`
		} `json:"intent_list"`
	}
	r.into(t, &listed)
	require.Len(t, listed.IntentList, 1)
	assert.JSONEq(t, `{"text":{"content":"怎么退货"}}`, string(listed.IntentList[0].Question), "mod_intent without question keeps it")
	assert.JSONEq(t, `[{"text":{"content":"见附件"},"attachments":[
		{"msgtype":"image","image":{"name":"退货.jpg"}},
		{"msgtype":"video","video":{"name":"流程.mp4"}},
		{"msgtype":"link","link":{"title":"退货说明","desc":"七天","url":"https://example.com/r","pic_url":"https://example.com/p.jpg"}},
		{"msgtype":"miniprogram","miniprogram":{"title":"商城","appid":"wx123","pagepath":"/p"}}]}]`, string(listed.IntentList[0].Answers))
	for name, bad := range map[string]obj{
		"unknown media":    {"msgtype": "image", "image": obj{"media_id": "nope"}},
		"video as image":   {"msgtype": "image", "image": obj{"media_id": vid}},
		"link without url": {"msgtype": "link", "link": obj{"title": "t"}},
		"no body":          {"msgtype": "link"},
		"unknown type":     {"msgtype": "file", "file": obj{"media_id": img}},
	} {
		code := a.post("/cgi-bin/kf/knowledge/mod_intent", obj{"intent_id": iid,
			"answers": []obj{{"text": obj{"content": "x"}, "attachments": []obj{bad}}}}).Code
		assert.NotZero(t, code, name)
	}
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/mod_intent", obj{"intent_id": iid, "question": obj{"text": obj{"content": "退货"}}}).Code,
		"question alone")
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/del_intent", obj{"intent_id": iid}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/del_intent", obj{"intent_id": iid}).Code)
	assert.Equal(t, 0, a.post("/cgi-bin/kf/knowledge/del_group", obj{"group_id": gid}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/knowledge/list_group", obj{"limit": 0}).Code)
}
