package kf_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
	"github.com/wxkf/wxkf/media"
)

// Endpoint tests: every API of §3–§9 against kftest, checking the request the fake
// received and the decoded reply.

func TestEndpointGetToken(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	tok, err := f.c.AccessToken(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, tok)
	rec := f.last(t, "/cgi-bin/gettoken")
	assert.Equal(t, "GET", rec.Method)
	assert.Contains(t, rec.Query, "corpid="+f.srv.CorpID())
	assert.NotContains(t, rec.Query, f.srv.Secret())
	again, err := f.c.AccessToken(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok, again, "cached")
	assert.Equal(t, 1, f.srv.Calls("/cgi-bin/gettoken"))
}

func TestEndpointSyncMsg(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	f.srv.AddText("wmAlice", "hello")
	f.srv.AddMenuClick("wmAlice", "101", "yes")
	img := f.srv.AddImage("wmBob", testJPEG(t))
	f.srv.AddLocation("wmBob", 23.1, 113.3, "place", "street")
	f.srv.AddServicerText("wmAlice", "servicer1", "human here")
	welcome := f.srv.EnterSession("wmCarol", "scene1", "param1")
	f.srv.AddEvent("msg_send_fail", map[string]any{"external_userid": "wmAlice", "fail_msgid": "m1", "fail_type": 6})
	f.srv.AddMessage(kftest.Message{ExternalUserID: "wmAlice", MsgType: "schedule", Body: map[string]any{"title": "x"}})
	f.srv.SetPageSize(3)
	token := f.srv.IssueSyncToken(kfID)

	var all []kf.Message
	cursor := ""
	pages := 0
	for {
		page, err := f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: kfID, Cursor: cursor, Token: token, Limit: 1000})
		require.NoError(t, err)
		pages++
		req := f.request(t, "/cgi-bin/kf/sync_msg")
		assert.Equal(t, kfID, req["open_kfid"])
		assert.EqualValues(t, 1000, req["limit"])
		if cursor == "" {
			assert.NotContains(t, req, "cursor", "no cursor on the first call (§4)")
		} else {
			assert.Equal(t, cursor, req["cursor"])
		}
		all = append(all, page.Messages...)
		cursor = page.NextCursor
		if !page.HasMore {
			break
		}
		require.NotEmpty(t, cursor)
	}
	assert.Equal(t, 3, pages)
	require.Len(t, all, 8)

	assert.Equal(t, kf.MsgTypeText, all[0].MsgType)
	assert.Equal(t, "hello", all[0].Text.Content)
	assert.Equal(t, kf.OriginCustomer, all[0].Origin)
	assert.Equal(t, "wmAlice", all[0].ExternalUserID)
	assert.Equal(t, kfID, all[0].OpenKfID)
	assert.WithinDuration(t, time.Now(), all[0].SendTime, time.Minute)
	assert.Greater(t, len(all[0].MsgID), 32, "msgids may exceed 32 characters (§4)")
	assert.Equal(t, "101", all[1].Text.MenuID)
	require.NotNil(t, all[2].Image)
	assert.Equal(t, img, all[2].MsgID)
	assert.NotEmpty(t, all[2].Image.MediaID)
	assert.Equal(t, &kf.Location{Latitude: 23.1, Longitude: 113.3, Name: "place", Address: "street"}, all[3].Location)
	assert.Equal(t, kf.OriginServicer, all[4].Origin)
	assert.Equal(t, "servicer1", all[4].ServicerUserID)
	require.NotNil(t, all[5].Event)
	assert.Equal(t, kf.OriginSystem, all[5].Origin)
	assert.Equal(t, kf.EventEnterSession, all[5].Event.EventType)
	assert.Equal(t, welcome, all[5].Event.WelcomeCode)
	assert.Equal(t, "scene1", all[5].Event.Scene)
	assert.Equal(t, "param1", all[5].Event.SceneParam)
	assert.Equal(t, kf.FailQuotaExceeded, all[6].Event.FailType)
	assert.Equal(t, "m1", all[6].Event.FailMsgID)
	assert.Equal(t, kf.MsgType("schedule"), all[7].MsgType)
	assert.JSONEq(t, `{"title":"x"}`, string(all[7].Raw))

	// SILK voice format and a page limit reach the request.
	_, err := f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: kfID, Limit: 2, VoiceFormat: kf.VoiceFormatSILK})
	require.NoError(t, err)
	req := f.request(t, "/cgi-bin/kf/sync_msg")
	assert.EqualValues(t, 2, req["limit"])
	assert.EqualValues(t, 1, req["voice_format"])

	// WeCom errors come back typed.
	_, err = f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: kfID, Token: "forged"})
	require.ErrorIs(t, err, kf.ErrInvalidMsgToken)
	_, err = f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: "wkUnknown"})
	require.ErrorIs(t, err, kf.ErrInvalidOpenKfID)
	var ae *kf.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "/cgi-bin/kf/sync_msg", ae.Path)

	// Local validation.
	for _, bad := range []kf.SyncMsgRequest{
		{},
		{OpenKfID: kfID, Limit: 1001},
		{OpenKfID: kfID, Limit: -1},
		{OpenKfID: kfID, VoiceFormat: 2},
		{OpenKfID: kfID, Cursor: strings.Repeat("c", 65)},
		{OpenKfID: kfID, Token: strings.Repeat("t", 129)},
	} {
		_, err := f.c.SyncMsg(ctx, bad)
		require.ErrorIs(t, err, kf.ErrInvalidArgument, "%+v", bad)
	}
}

func TestEndpointSendMsg(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	f.srv.AddText("wmAlice", "hi")
	imgID := f.srv.PutMedia("image", "a.jpg", testJPEG(t))
	voiceID := f.srv.PutMedia("voice", "a.amr", testAMR(10))

	id, err := f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, Content: kf.NewText("hello 你好")})
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	id2, err := f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, MsgID: "reply_1-a", Content: kf.NewImage(imgID)})
	require.NoError(t, err)
	assert.Equal(t, "reply_1-a", id2, "the client msgid is the msgid")
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, Content: kf.NewVoice(voiceID)})
	require.NoError(t, err)
	menu := kf.NewMenu("Pick:", []kf.MenuItem{kf.MenuClick("1", "one"), kf.MenuView("https://example.com", "web"),
		kf.MenuMiniProgram("wxapp", "pages/a", "app"), kf.MenuText("bye", false)}, "thanks")
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, Content: menu})
	require.NoError(t, err)
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, Content: kf.NewLocation("n", "a", 1.5, 2.5)})
	require.NoError(t, err)

	sent := f.srv.SentTo(kfID, "wmAlice")
	require.Len(t, sent, 5)
	assert.Equal(t, "text", sent[0].MsgType)
	assert.Equal(t, "hello 你好", sent[0].Text)
	assert.Equal(t, id, sent[0].MsgID)
	assert.Empty(t, sent[0].ClientMsgID)
	assert.Equal(t, "image", sent[1].MsgType)
	assert.Equal(t, imgID, sent[1].MediaID)
	assert.Equal(t, "reply_1-a", sent[1].ClientMsgID)
	assert.Equal(t, "voice", sent[2].MsgType)
	assert.Equal(t, "msgmenu", sent[3].MsgType)
	var sentBody struct {
		MsgMenu json.RawMessage `json:"msgmenu"`
	}
	require.NoError(t, json.Unmarshal(sent[3].Body, &sentBody))
	assert.JSONEq(t, `{"head_content":"Pick:","list":[{"type":"click","click":{"id":"1","content":"one"}},`+
		`{"type":"view","view":{"url":"https://example.com","content":"web"}},`+
		`{"type":"miniprogram","miniprogram":{"appid":"wxapp","pagepath":"pages/a","content":"app"}},`+
		`{"type":"text","text":{"content":"bye"}}],"tail_content":"thanks"}`, string(sentBody.MsgMenu))
	assert.Equal(t, "location", sent[4].MsgType)

	// The 6th message after the customer's last one: 95001 (§6), not retried.
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: kfID, Content: kf.NewText("6th")})
	require.ErrorIs(t, err, kf.ErrQuotaExceeded)
	assert.Equal(t, 95001, kf.ErrorCode(err))
	assert.Len(t, f.srv.SentTo(kfID, "wmAlice"), 5)

	// A human servicer has the session: 95018.
	f.srv.AddText("wmBob", "hi")
	f.srv.SetServiceState(kfID, "wmBob", kftest.StateServicer, "servicer1")
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmBob", OpenKfID: kfID, Content: kf.NewText("x")})
	require.ErrorIs(t, err, kf.ErrStateForbidsSend)

	// A duplicate client msgid is refused by WeCom: the idempotency key works.
	f.srv.AddText("wmCarol", "hi")
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmCarol", OpenKfID: kfID, MsgID: "dup", Content: kf.NewText("1")})
	require.NoError(t, err)
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmCarol", OpenKfID: kfID, MsgID: "dup", Content: kf.NewText("2")})
	assert.Equal(t, kftest.DuplicateMsgIDCode, kf.ErrorCode(err))
	assert.Len(t, f.srv.SentTo(kfID, "wmCarol"), 1)

	// A customer who never wrote: 95031.
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmNobody", OpenKfID: kfID, Content: kf.NewText("x")})
	require.Error(t, err)
	assert.NotZero(t, kf.ErrorCode(err))
}

func TestEndpointSendMsgOnEvent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	code := f.srv.EnterSession("wmAlice", "", "")
	require.NotEmpty(t, code)
	id, err := f.c.SendMsgOnEvent(ctx, kf.SendMsgOnEventRequest{Code: code, MsgID: "welcome1", Content: kf.NewText("Welcome!")})
	require.NoError(t, err)
	assert.Equal(t, "welcome1", id)
	req := f.request(t, "/cgi-bin/kf/send_msg_on_event")
	assert.Equal(t, code, req["code"])
	assert.Equal(t, "text", req["msgtype"])
	assert.Equal(t, map[string]any{"content": "Welcome!"}, req["text"])
	sent := f.srv.Sent()
	require.Len(t, sent, 1)
	assert.True(t, sent[0].OnEvent)
	assert.Equal(t, "Welcome!", sent[0].Text)

	// Codes are single use (§6).
	_, err = f.c.SendMsgOnEvent(ctx, kf.SendMsgOnEventRequest{Code: code, Content: kf.NewText("again")})
	require.ErrorIs(t, err, kf.ErrInvalidMsgToken)

	code2 := f.srv.EnterSession("wmBob", "", "")
	_, err = f.c.SendMsgOnEvent(ctx, kf.SendMsgOnEventRequest{Code: code2, Content: kf.NewMenu("Hi", []kf.MenuItem{kf.MenuClick("a", "A")}, "")})
	require.NoError(t, err)
	assert.Equal(t, "msgmenu", f.srv.Sent()[1].MsgType)
}

func TestEndpointServiceState(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	f.srv.AddText("wmAlice", "hi")
	f.srv.AddServicer("servicer1", kftest.ServicerReceiving)
	f.srv.AddServicer("stopped1", kftest.ServicerStopped)

	st, err := f.c.GetServiceState(ctx, kfID, "wmAlice")
	require.NoError(t, err)
	assert.Equal(t, kf.ServiceStateNew, st.State)
	assert.Equal(t, map[string]any{"open_kfid": kfID, "external_userid": "wmAlice"}, f.request(t, "/cgi-bin/kf/service_state/get"))

	_, err = f.c.TransServiceState(ctx, kf.TransServiceStateRequest{OpenKfID: kfID, ExternalUserID: "wmAlice", State: kf.ServiceStateAssistant})
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.request(t, "/cgi-bin/kf/service_state/trans")["service_state"])
	state, _ := f.srv.ServiceState(kfID, "wmAlice")
	assert.Equal(t, kftest.StateAssist, state)

	_, err = f.c.TransServiceState(ctx, kf.TransServiceStateRequest{OpenKfID: kfID, ExternalUserID: "wmAlice", State: kf.ServiceStateServicer, ServicerUserID: "stopped1"})
	require.ErrorIs(t, err, kf.ErrServicerNotReceiving)

	_, err = f.c.TransServiceState(ctx, kf.TransServiceStateRequest{OpenKfID: kfID, ExternalUserID: "wmAlice", State: kf.ServiceStateServicer, ServicerUserID: "servicer1"})
	require.NoError(t, err)
	assert.Equal(t, "servicer1", f.request(t, "/cgi-bin/kf/service_state/trans")["servicer_userid"])
	st, err = f.c.GetServiceState(ctx, kfID, "wmAlice")
	require.NoError(t, err)
	assert.Equal(t, &kf.ServiceState{State: kf.ServiceStateServicer, ServicerUserID: "servicer1"}, st)

	code, err := f.c.TransServiceState(ctx, kf.TransServiceStateRequest{OpenKfID: kfID, ExternalUserID: "wmAlice", State: kf.ServiceStateEnded})
	require.NoError(t, err)
	assert.NotEmpty(t, code, "ending a session gives a msg_code for send_msg_on_event")

	_, err = f.c.TransServiceState(ctx, kf.TransServiceStateRequest{OpenKfID: kfID, ExternalUserID: "wmAlice", State: kf.ServiceStateAssistant})
	require.ErrorIs(t, err, kf.ErrInvalidStateTransition)

	for _, bad := range []kf.TransServiceStateRequest{
		{ExternalUserID: "wm", State: 1},
		{OpenKfID: kfID, State: 1},
		{OpenKfID: kfID, ExternalUserID: "wm", State: 5},
		{OpenKfID: kfID, ExternalUserID: "wm", State: kf.ServiceStateServicer},
	} {
		_, err := f.c.TransServiceState(ctx, bad)
		require.ErrorIs(t, err, kf.ErrInvalidArgument)
	}
	_, err = f.c.GetServiceState(ctx, kfID, "")
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointAccounts(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	up, err := f.c.UploadMedia(ctx, media.KindImage, "avatar.jpg", bytes.NewReader(testJPEG(t)))
	require.NoError(t, err)

	id, err := f.c.AddAccount(ctx, "客服小助手", up.MediaID)
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	assert.Equal(t, map[string]any{"name": "客服小助手", "media_id": up.MediaID}, f.request(t, "/cgi-bin/kf/account/add"))

	require.NoError(t, f.c.UpdateAccount(ctx, kf.UpdateAccountRequest{OpenKfID: id, Name: "New name"}))
	assert.Equal(t, map[string]any{"open_kfid": id, "name": "New name"}, f.request(t, "/cgi-bin/kf/account/update"))

	list, err := f.c.ListAccounts(ctx, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"offset": 0.0, "limit": 100.0}, f.request(t, "/cgi-bin/kf/account/list"))
	assert.Equal(t, "POST", f.last(t, "/cgi-bin/kf/account/list").Method)
	require.Len(t, list, 2)
	assert.Equal(t, f.srv.OpenKfID(), list[0].OpenKfID)
	assert.Equal(t, id, list[1].OpenKfID)
	assert.Equal(t, "New name", list[1].Name)
	assert.NotEmpty(t, list[1].Avatar)
	assert.True(t, list[1].ManagePrivilege)

	page, err := f.c.ListAccounts(ctx, 1, 1)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, id, page[0].OpenKfID)

	// AllAccounts pages through more than one page.
	for i := range 120 {
		f.srv.AddAccount("acc" + string(rune('a'+i%26)))
	}
	all, err := f.c.AllAccounts(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 122)

	require.NoError(t, f.c.DeleteAccount(ctx, id))
	assert.Equal(t, map[string]any{"open_kfid": id}, f.request(t, "/cgi-bin/kf/account/del"))
	err = f.c.DeleteAccount(ctx, id)
	require.ErrorIs(t, err, kf.ErrInvalidOpenKfID)

	_, err = f.c.AddAccount(ctx, strings.Repeat("名", 17), up.MediaID)
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.ListAccounts(ctx, 0, 101)
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	require.ErrorIs(t, f.c.UpdateAccount(ctx, kf.UpdateAccountRequest{OpenKfID: id}), kf.ErrInvalidArgument)
}

func TestEndpointAddContactWay(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	u, err := f.c.AddContactWay(ctx, f.srv.OpenKfID(), "spring_sale-1")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(u, "https://"), u)
	assert.Equal(t, map[string]any{"open_kfid": f.srv.OpenKfID(), "scene": "spring_sale-1"}, f.request(t, "/cgi-bin/kf/add_contact_way"))

	withParam, err := kf.AppendSceneParam(u, "order=42&x=中")
	require.NoError(t, err)
	assert.Equal(t, u+"&scene_param=order%3D42%26x%3D%E4%B8%AD", withParam)
	plain, err := kf.AppendSceneParam("https://work.weixin.qq.com/kfid/kfc1", "a")
	require.NoError(t, err)
	assert.Equal(t, "https://work.weixin.qq.com/kfid/kfc1?scene_param=a", plain)
	_, err = kf.AppendSceneParam(u, strings.Repeat("p", 129))
	require.ErrorIs(t, err, kf.ErrInvalidArgument)

	_, err = f.c.AddContactWay(ctx, f.srv.OpenKfID(), "bad scene")
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.AddContactWay(ctx, f.srv.OpenKfID(), strings.Repeat("s", 33))
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointServicers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	res, err := f.c.AddServicers(ctx, kf.ServicersRequest{OpenKfID: kfID, UserIDs: []string{"zhangsan", "lisi"}, DepartmentIDs: []int64{2}})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"open_kfid": kfID, "userid_list": []any{"zhangsan", "lisi"}, "department_id_list": []any{2.0}},
		f.request(t, "/cgi-bin/kf/servicer/add"))
	require.Len(t, res, 3)
	assert.Equal(t, "zhangsan", res[0].UserID)
	assert.NoError(t, res[0].Err())
	assert.EqualValues(t, 2, res[2].DepartmentID)

	list, err := f.c.ListServicers(ctx, kfID)
	require.NoError(t, err)
	rec := f.last(t, "/cgi-bin/kf/servicer/list")
	assert.Equal(t, "GET", rec.Method)
	assert.Contains(t, rec.Query, "open_kfid="+kfID)
	require.Len(t, list, 3)
	assert.Equal(t, "zhangsan", list[0].UserID)
	assert.True(t, list[0].Receiving(), "servicer/list status 0 = receiving")
	assert.EqualValues(t, 2, list[2].DepartmentID)
	assert.False(t, list[2].Receiving(), "a department is not a receiving member")

	res, err = f.c.DeleteServicers(ctx, kf.ServicersRequest{OpenKfID: kfID, UserIDs: []string{"lisi", "nobody"}})
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.NoError(t, res[0].Err())
	var ae *kf.APIError
	require.ErrorAs(t, res[1].Err(), &ae)
	assert.NotZero(t, ae.Code)
	list, err = f.c.ListServicers(ctx, kfID)
	require.NoError(t, err)
	assert.Len(t, list, 2)

	_, err = f.c.AddServicers(ctx, kf.ServicersRequest{OpenKfID: kfID})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.AddServicers(ctx, kf.ServicersRequest{OpenKfID: kfID, UserIDs: make([]string, 101)})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointCustomerBatchGet(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	f.srv.SetCustomer(kftest.Customer{ExternalUserID: "wmAlice", Nickname: "Alice", Avatar: "https://a/x", Gender: 2, UnionID: "oU1"})
	f.srv.EnterSession("wmAlice", "scene9", "p9")
	got, err := f.c.BatchGetCustomers(ctx, []string{"wmAlice", "wmGhost"}, true)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"external_userid_list": []any{"wmAlice", "wmGhost"}, "need_enter_session_context": 1.0},
		f.request(t, "/cgi-bin/kf/customer/batchget"))
	require.Len(t, got.Customers, 1)
	cu := got.Customers[0]
	assert.Equal(t, "wmAlice", cu.ExternalUserID)
	assert.Equal(t, "Alice", cu.Nickname)
	assert.Equal(t, kf.GenderFemale, cu.Gender)
	assert.Equal(t, "oU1", cu.UnionID)
	require.NotNil(t, cu.EnterSessionContext)
	assert.Equal(t, "scene9", cu.EnterSessionContext.Scene)
	assert.Equal(t, "p9", cu.EnterSessionContext.SceneParam)
	assert.Equal(t, []string{"wmGhost"}, got.InvalidExternalUserIDs)

	_, err = f.c.BatchGetCustomers(ctx, []string{"wmAlice"}, false)
	require.NoError(t, err)
	assert.EqualValues(t, 0, f.request(t, "/cgi-bin/kf/customer/batchget")["need_enter_session_context"])

	_, err = f.c.BatchGetCustomers(ctx, nil, false)
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.BatchGetCustomers(ctx, make([]string, 101), false)
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointCorpQualification(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	q, err := f.c.GetCorpQualification(context.Background())
	require.NoError(t, err)
	assert.NotNil(t, q)
	assert.Equal(t, "GET", f.last(t, "/cgi-bin/kf/get_corp_qualification").Method)
}

func TestEndpointUpgradeService(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	f.srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	f.srv.AddText("wmAlice", "hi")

	cfg, err := f.c.GetUpgradeServiceConfig(ctx)
	require.NoError(t, err)
	assert.Equal(t, "GET", f.last(t, "/cgi-bin/kf/customer/get_upgrade_service_config").Method)
	assert.Equal(t, []string{"zhangsan"}, cfg.MemberRange.UserIDs)
	assert.Equal(t, []string{kftest.UpgradeChatID}, cfg.GroupChatRange.ChatIDs)

	require.NoError(t, f.c.UpgradeService(ctx, kf.UpgradeServiceRequest{OpenKfID: kfID, ExternalUserID: "wmAlice",
		Member: &kf.UpgradeMember{UserID: "zhangsan", Wording: "Ask Zhang"}}))
	assert.Equal(t, map[string]any{"open_kfid": kfID, "external_userid": "wmAlice", "type": 1.0,
		"member": map[string]any{"userid": "zhangsan", "wording": "Ask Zhang"}}, f.request(t, "/cgi-bin/kf/customer/upgrade_service"))
	require.NoError(t, f.c.UpgradeService(ctx, kf.UpgradeServiceRequest{OpenKfID: kfID, ExternalUserID: "wmAlice",
		Type: kf.UpgradeToGroupChat, GroupChat: &kf.UpgradeGroupChat{ChatID: kftest.UpgradeChatID}}))
	assert.Equal(t, map[string]any{"open_kfid": kfID, "external_userid": "wmAlice", "type": 2.0,
		"groupchat": map[string]any{"chat_id": kftest.UpgradeChatID}}, f.request(t, "/cgi-bin/kf/customer/upgrade_service"))

	require.NoError(t, f.c.CancelUpgradeService(ctx, kfID, "wmAlice"))
	assert.Equal(t, map[string]any{"open_kfid": kfID, "external_userid": "wmAlice"}, f.request(t, "/cgi-bin/kf/customer/cancel_upgrade_service"))
	require.ErrorIs(t, f.c.CancelUpgradeService(ctx, kfID, "wmGhost"), kf.ErrInvalidExternalUserID)

	for _, bad := range []kf.UpgradeServiceRequest{
		{OpenKfID: kfID, ExternalUserID: "wmAlice"},
		{OpenKfID: kfID, ExternalUserID: "wmAlice", Type: 1, GroupChat: &kf.UpgradeGroupChat{ChatID: "c"}},
		{OpenKfID: kfID, ExternalUserID: "wmAlice", Member: &kf.UpgradeMember{UserID: "a"}, GroupChat: &kf.UpgradeGroupChat{ChatID: "c"}},
		{OpenKfID: kfID, ExternalUserID: "wmAlice", Type: 3, Member: &kf.UpgradeMember{UserID: "a"}},
	} {
		require.ErrorIs(t, f.c.UpgradeService(ctx, bad), kf.ErrInvalidArgument)
	}
}

func TestEndpointStatistics(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	kfID := f.srv.OpenKfID()
	f.srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	cst := time.FixedZone("CST", 8*3600)
	now := time.Now().In(cst)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, cst)
	start, end := today.AddDate(0, 0, -3), today.AddDate(0, 0, -1)

	corp, err := f.c.GetCorpStatistic(ctx, kf.StatisticRequest{OpenKfID: kfID, StartTime: start, EndTime: end})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"open_kfid": kfID, "start_time": float64(start.Unix()), "end_time": float64(end.Unix())},
		f.request(t, "/cgi-bin/kf/get_corp_statistic"))
	require.Len(t, corp, 3)
	assert.True(t, corp[0].StatTime.Equal(start))
	assert.True(t, corp[2].StatTime.Equal(end))

	sv, err := f.c.GetServicerStatistic(ctx, kf.StatisticRequest{OpenKfID: kfID, ServicerUserID: "zhangsan", StartTime: end, EndTime: end})
	require.NoError(t, err)
	assert.Equal(t, "zhangsan", f.request(t, "/cgi-bin/kf/get_servicer_statistic")["servicer_userid"])
	require.Len(t, sv, 1)
	assert.True(t, sv[0].StatTime.Equal(end))

	// WeCom's window rules are WeCom's: today is rejected by the server, not guessed locally.
	_, err = f.c.GetCorpStatistic(ctx, kf.StatisticRequest{OpenKfID: kfID, StartTime: today, EndTime: today})
	require.ErrorIs(t, err, kf.ErrInvalidParameter)
	_, err = f.c.GetCorpStatistic(ctx, kf.StatisticRequest{OpenKfID: kfID, StartTime: end, EndTime: start})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.GetCorpStatistic(ctx, kf.StatisticRequest{OpenKfID: kfID, ServicerUserID: "x", StartTime: start, EndTime: end})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointKnowledge(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	gid, err := f.c.AddKnowledgeGroup(ctx, "Shipping")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"name": "Shipping"}, f.request(t, "/cgi-bin/kf/knowledge/add_group"))
	require.NoError(t, f.c.RenameKnowledgeGroup(ctx, gid, "Delivery"))
	assert.Equal(t, map[string]any{"group_id": gid, "name": "Delivery"}, f.request(t, "/cgi-bin/kf/knowledge/mod_group"))

	groups, err := f.c.ListKnowledgeGroups(ctx, kf.KnowledgeListRequest{Limit: 100})
	require.NoError(t, err)
	var found *kf.KnowledgeGroup
	for i, g := range groups.Groups {
		if g.GroupID == gid {
			found = &groups.Groups[i]
		}
	}
	require.NotNil(t, found)
	assert.Equal(t, "Delivery", found.Name)
	assert.False(t, found.IsDefault)

	imgID := f.srv.PutMedia("image", "a.jpg", testJPEG(t))
	iid, err := f.c.AddKnowledgeIntent(ctx, kf.KnowledgeIntent{
		GroupID:          gid,
		Question:         "When does it ship?",
		SimilarQuestions: []string{"Shipping time?", "How long?"},
		Answers: []kf.KnowledgeAnswer{{Text: "Within 24 h.", Attachments: []kf.KnowledgeAttachment{
			{MsgType: kf.MsgTypeImage, Image: &kf.KnowledgeMedia{MediaID: imgID}}}}},
	})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"group_id":          gid,
		"question":          map[string]any{"text": map[string]any{"content": "When does it ship?"}},
		"similar_questions": map[string]any{"items": []any{map[string]any{"text": map[string]any{"content": "Shipping time?"}}, map[string]any{"text": map[string]any{"content": "How long?"}}}},
		"answers": []any{map[string]any{"text": map[string]any{"content": "Within 24 h."},
			"attachments": []any{map[string]any{"msgtype": "image", "image": map[string]any{"media_id": imgID}}}}},
	}, f.request(t, "/cgi-bin/kf/knowledge/add_intent"))

	require.NoError(t, f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid, Question: "Ship time?", Answers: []kf.KnowledgeAnswer{{Text: "1 day"}}}))
	assert.Equal(t, iid, f.request(t, "/cgi-bin/kf/knowledge/mod_intent")["intent_id"])

	intents, err := f.c.ListKnowledgeIntents(ctx, kf.KnowledgeListRequest{GroupID: gid})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"group_id": gid}, f.request(t, "/cgi-bin/kf/knowledge/list_intent"))
	require.Len(t, intents.Intents, 1)
	in := intents.Intents[0]
	assert.Equal(t, iid, in.IntentID)
	assert.Equal(t, gid, in.GroupID)
	assert.Equal(t, "Ship time?", in.Question)
	require.Len(t, in.Answers, 1)
	assert.Equal(t, "1 day", in.Answers[0].Text)
	assert.False(t, intents.HasMore)

	// mod_intent: question and answers are each optional; only what is set is sent.
	require.NoError(t, f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid, Question: "Shipping?"}))
	assert.Equal(t, map[string]any{"intent_id": iid, "question": map[string]any{"text": map[string]any{"content": "Shipping?"}}},
		f.request(t, "/cgi-bin/kf/knowledge/mod_intent"))
	require.NoError(t, f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid, SimilarQuestions: []string{}}))
	assert.Equal(t, map[string]any{"intent_id": iid, "similar_questions": map[string]any{"items": []any{}}},
		f.request(t, "/cgi-bin/kf/knowledge/mod_intent"))
	require.ErrorIs(t, f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid}), kf.ErrInvalidArgument, "nothing to change")

	// Attachments of every kind (doc 95972); list_intent names images and videos by file name.
	vidID := f.srv.PutMedia("video", "v.mp4", []byte("not really an mp4"))
	link := &kf.KnowledgeLink{Title: "Policy", Desc: "Returns", URL: "https://example.com/r", PicURL: "https://example.com/p.jpg"}
	require.NoError(t, f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid, Answers: []kf.KnowledgeAnswer{{Text: "See",
		Attachments: []kf.KnowledgeAttachment{
			{MsgType: kf.MsgTypeImage, Image: &kf.KnowledgeMedia{MediaID: imgID, Name: "ignored.jpg"}},
			{MsgType: kf.MsgTypeVideo, Video: &kf.KnowledgeMedia{MediaID: vidID}},
			{MsgType: kf.MsgTypeLink, Link: link},
			{MsgType: kf.MsgTypeMiniProgram, MiniProgram: &kf.MiniProgram{Title: "Shop", AppID: "wx1", PagePath: "/p", ThumbMediaID: imgID}},
		}}}}))
	sent := f.request(t, "/cgi-bin/kf/knowledge/mod_intent")
	assert.Equal(t, []any{map[string]any{"text": map[string]any{"content": "See"}, "attachments": []any{
		map[string]any{"msgtype": "image", "image": map[string]any{"media_id": imgID}},
		map[string]any{"msgtype": "video", "video": map[string]any{"media_id": vidID}},
		map[string]any{"msgtype": "link", "link": map[string]any{"title": "Policy", "desc": "Returns", "url": "https://example.com/r", "pic_url": "https://example.com/p.jpg"}},
		map[string]any{"msgtype": "miniprogram", "miniprogram": map[string]any{"title": "Shop", "appid": "wx1", "pagepath": "/p", "thumb_media_id": imgID}},
	}}}, sent["answers"])
	assert.NotContains(t, sent, "question")
	intents, err = f.c.ListKnowledgeIntents(ctx, kf.KnowledgeListRequest{IntentID: iid})
	require.NoError(t, err)
	require.Len(t, intents.Intents, 1)
	assert.Equal(t, "Shipping?", intents.Intents[0].Question)
	assert.Equal(t, []kf.KnowledgeAttachment{
		{MsgType: kf.MsgTypeImage, Image: &kf.KnowledgeMedia{Name: "a.jpg"}},
		{MsgType: kf.MsgTypeVideo, Video: &kf.KnowledgeMedia{Name: "v.mp4"}},
		{MsgType: kf.MsgTypeLink, Link: link},
		{MsgType: kf.MsgTypeMiniProgram, MiniProgram: &kf.MiniProgram{Title: "Shop", AppID: "wx1", PagePath: "/p"}},
	}, intents.Intents[0].Answers[0].Attachments)
	for name, bad := range map[string]kf.KnowledgeAttachment{
		"link without url": {MsgType: kf.MsgTypeLink, Link: &kf.KnowledgeLink{Title: "t"}},
		"listed image":     {MsgType: kf.MsgTypeImage, Image: &kf.KnowledgeMedia{Name: "a.jpg"}},
		"two bodies":       {MsgType: kf.MsgTypeLink, Link: link, Image: &kf.KnowledgeMedia{MediaID: imgID}},
		"file":             {MsgType: kf.MsgTypeFile},
	} {
		err := f.c.UpdateKnowledgeIntent(ctx, kf.KnowledgeIntent{IntentID: iid, Answers: []kf.KnowledgeAnswer{{Text: "x", Attachments: []kf.KnowledgeAttachment{bad}}}})
		assert.ErrorIs(t, err, kf.ErrInvalidArgument, name)
	}

	require.NoError(t, f.c.DeleteKnowledgeIntent(ctx, iid))
	assert.Equal(t, map[string]any{"intent_id": iid}, f.request(t, "/cgi-bin/kf/knowledge/del_intent"))
	require.NoError(t, f.c.DeleteKnowledgeGroup(ctx, gid))
	assert.Equal(t, map[string]any{"group_id": gid}, f.request(t, "/cgi-bin/kf/knowledge/del_group"))
	require.ErrorIs(t, f.c.DeleteKnowledgeGroup(ctx, gid), kf.ErrInvalidParameter)

	_, err = f.c.AddKnowledgeIntent(ctx, kf.KnowledgeIntent{GroupID: gid, Question: "q"})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.AddKnowledgeIntent(ctx, kf.KnowledgeIntent{GroupID: gid, Question: "q", Answers: []kf.KnowledgeAnswer{{Text: "a",
		Attachments: []kf.KnowledgeAttachment{{MsgType: kf.MsgTypeVideo, Image: &kf.KnowledgeMedia{MediaID: "x"}}}}}})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.ListKnowledgeGroups(ctx, kf.KnowledgeListRequest{Limit: 1001})
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

// Paging of list_group: next_cursor and has_more.
func TestEndpointKnowledgeGroupPaging(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	for i := range 5 {
		_, err := f.c.AddKnowledgeGroup(ctx, "g"+string(rune('0'+i)))
		require.NoError(t, err)
	}
	var names []string
	req := kf.KnowledgeListRequest{Limit: 2}
	for {
		page, err := f.c.ListKnowledgeGroups(ctx, req)
		require.NoError(t, err)
		if req.Cursor != "" {
			assert.Equal(t, req.Cursor, f.request(t, "/cgi-bin/kf/knowledge/list_group")["cursor"])
		}
		assert.LessOrEqual(t, len(page.Groups), 2)
		for _, g := range page.Groups {
			names = append(names, g.Name)
		}
		if !page.HasMore {
			break
		}
		req.Cursor = page.NextCursor
	}
	assert.GreaterOrEqual(t, len(names), 5)
}

func TestEndpointMediaUpload(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	cases := []struct {
		kind     media.Kind
		filename string
		data     []byte
	}{
		{media.KindImage, "photo.jpg", testJPEG(t)},
		{media.KindVoice, "voice.amr", testAMR(50)},
		{media.KindVideo, "clip.mp4", testMP4()},
		{media.KindFile, "报告.pdf", []byte("%PDF-1.4 a small file")},
	}
	for _, tc := range cases {
		up, err := f.c.UploadMedia(ctx, tc.kind, tc.filename, bytes.NewReader(tc.data))
		require.NoError(t, err, tc.kind)
		assert.Equal(t, tc.kind, up.Type)
		assert.NotEmpty(t, up.MediaID)
		assert.WithinDuration(t, time.Now(), up.CreatedAt, time.Minute, "created_at is a string of unix seconds")
		rec := f.last(t, "/cgi-bin/media/upload")
		assert.Contains(t, rec.Query, "type="+string(tc.kind))
		var summary map[string]any
		require.NoError(t, json.Unmarshal(rec.Request, &summary))
		assert.Equal(t, tc.filename, summary["filename"])
		assert.EqualValues(t, len(tc.data), summary["size"])
		data, _, filename, ok := f.srv.Media(up.MediaID)
		require.True(t, ok)
		assert.Equal(t, tc.data, data)
		assert.Equal(t, tc.filename, filename)
	}

	// §9 limits are checked before any upload, naming the limit.
	before := f.srv.Calls("/cgi-bin/media/upload")
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
	for _, tc := range []struct {
		kind  media.Kind
		data  []byte
		limit string
	}{
		{media.KindFile, []byte("12345"), "larger than 5 bytes"},
		{media.KindImage, pad(testJPEG(t), media.MaxImageBytes+1), "10 MB"},
		{media.KindImage, []byte("GIF89a-not-allowed"), "JPG or PNG"},
		{media.KindVoice, make([]byte, media.MaxVoiceBytes+1), ""},
		{media.KindVideo, pad(testMP4(), media.MaxVideoBytes+1), "10 MB"},
		{media.KindVideo, []byte("not an mp4 at all"), "MP4"},
		{media.KindFile, make([]byte, media.MaxFileBytes+1), "20 MB"},
	} {
		_, err := f.c.UploadMedia(ctx, tc.kind, "x.bin", bytes.NewReader(tc.data))
		var le *media.LimitError
		require.ErrorAs(t, err, &le, "%s %d bytes", tc.kind, len(tc.data))
		assert.Equal(t, tc.kind, le.Kind)
		assert.Contains(t, le.Limit, tc.limit)
		assert.Contains(t, err.Error(), le.Limit, "the error names the limit broken")
	}
	// The reader is not drained past the limit: a huge stream costs limit+1 bytes.
	huge := &countingReader{n: 1 << 30}
	_, err := f.c.UploadMedia(ctx, media.KindFile, "huge.bin", huge)
	require.Error(t, err)
	assert.EqualValues(t, media.MaxFileBytes+1, huge.read)
	// Voice over 60 s (3001 frames of 20 ms).
	_, err = f.c.UploadMedia(ctx, media.KindVoice, "long.amr", bytes.NewReader(testAMR(3001)))
	var le *media.LimitError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, before, f.srv.Calls("/cgi-bin/media/upload"), "nothing uploaded")

	_, err = f.c.UploadMedia(ctx, "sticker", "x", bytes.NewReader([]byte("123456")))
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.UploadMedia(ctx, media.KindFile, "", bytes.NewReader([]byte("123456")))
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
	_, err = f.c.UploadMedia(ctx, media.KindFile, "a/b", bytes.NewReader([]byte("123456")))
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

func TestEndpointMediaDownload(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	jpg := testJPEG(t)
	id := f.srv.PutMedia("image", "照片 1.jpg", jpg)
	var buf bytes.Buffer
	d, err := f.c.DownloadMedia(ctx, id, &buf)
	require.NoError(t, err)
	assert.Equal(t, jpg, buf.Bytes())
	assert.Equal(t, "照片 1.jpg", d.Filename)
	assert.Equal(t, "image/jpeg", d.ContentType)
	assert.EqualValues(t, len(jpg), d.Size)
	rec := f.last(t, "/cgi-bin/media/get")
	assert.Equal(t, "GET", rec.Method)
	assert.Contains(t, rec.Query, "media_id="+id)

	// A JSON file the customer sent is data, not an error (it has a Content-Disposition).
	jsonFile := []byte(`{"errcode":40007,"errmsg":"this is a file"}`)
	jid := f.srv.PutMedia("file", "data.json", jsonFile)
	buf.Reset()
	_, err = f.c.DownloadMedia(ctx, jid, &buf)
	require.NoError(t, err)
	assert.Equal(t, jsonFile, buf.Bytes())

	// An unknown media_id: WeCom's JSON error body with HTTP 200 is an *APIError, nothing written.
	buf.Reset()
	_, err = f.c.DownloadMedia(ctx, "3unknown", &buf)
	require.ErrorIs(t, err, kf.ErrInvalidMediaID)
	assert.Zero(t, buf.Len())

	// The download cap.
	small, err := kf.NewClient(f.srv.CorpID(), f.srv.Secret(), kf.WithBaseURL(f.srv.URL()), kf.WithMaxDownloadBytes(10))
	require.NoError(t, err)
	buf.Reset()
	_, err = small.DownloadMedia(ctx, id, &buf)
	require.ErrorIs(t, err, kf.ErrResponseTooLarge)
	assert.Zero(t, buf.Len(), "Content-Length over the cap: nothing written")

	_, err = f.c.DownloadMedia(ctx, "", &buf)
	require.ErrorIs(t, err, kf.ErrInvalidArgument)
}

// Menu item limits that only second sources give (click id 1–64 bytes, content ≤ 128 bytes) are not
// enforced locally: the request reaches WeCom, and WeCom's errcode and errmsg come back as *APIError.
func TestMenuItemLimitsLeftToWeCom(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	f.srv.AddText("wmAlice", "hi")
	long := kf.NewMenu("h", []kf.MenuItem{kf.MenuClick(strings.Repeat("i", 65), strings.Repeat("c", 129))}, "")
	_, err := f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), Content: long})
	require.NoError(t, err, "the fake, like this package, does not model those limits")
	assert.Equal(t, 1, f.srv.Calls("/cgi-bin/kf/send_msg"))

	// What WeCom would answer if it enforced them: its errcode and errmsg surface unchanged.
	f.srv.FailWith("/cgi-bin/kf/send_msg", 40058, "invalid msgmenu click id size, hint: [x]")
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), MsgID: "m2", Content: long})
	var ae *kf.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 40058, ae.Code)
	assert.Equal(t, "invalid msgmenu click id size, hint: [x]", ae.Msg)

	// An empty click content is the fake's own rule (an approximation): answered, not rejected here.
	f.srv.Handle("/cgi-bin/kf/send_msg", nil)
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), Content: kf.NewMenu("h", []kf.MenuItem{kf.MenuClick("1", "")}, "")})
	require.ErrorIs(t, err, kf.ErrInvalidParameter)
	assert.NotErrorIs(t, err, kf.ErrInvalidArgument)
}

// A file over 20 MB: WeCom answers 830002 to a plain media/get, and the client fetches the file in
// Range chunks of at most 20 MB (doc 96486), each answered 206.
func TestEndpointMediaDownloadOver20MB(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	data := make([]byte, 45<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>20)
	}
	id := f.srv.PutMedia("file", "big.bin", data)
	h := sha256.New()
	d, err := f.c.DownloadMedia(ctx, id, h)
	require.NoError(t, err)
	want := sha256.Sum256(data)
	assert.Equal(t, want[:], h.Sum(nil))
	assert.EqualValues(t, len(data), d.Size)
	assert.Equal(t, "big.bin", d.Filename)
	assert.Equal(t, 1+3, f.srv.Calls("/cgi-bin/media/get"), "one 830002, then 16 MiB + 16 MiB + 13 MiB")
	rej := f.srv.Rejected()
	require.Len(t, rej, 1)
	assert.Equal(t, kftest.CodeMediaNeedsRange, rej[0].Code)

	// The download cap is checked against the total size before anything is written.
	capped := newFake(t, kf.WithMaxDownloadBytes(30<<20))
	cid := capped.srv.PutMedia("file", "big.bin", data)
	var n countingWriter
	_, err = capped.c.DownloadMedia(ctx, cid, &n)
	require.ErrorIs(t, err, kf.ErrResponseTooLarge)
	assert.Zero(t, n)
}

// Answers to the chunked download that do not fit: a server that ignores Range sends the whole
// file with 200 (accepted); a Content-Range for other bytes than asked is an error.
func TestMediaDownloadRangeAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := bytes.Repeat([]byte("abcdefgh"), 5<<20) // 40 MiB
	serve := func(rangeAnswer func(w http.ResponseWriter, r *http.Request)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Range") == "" {
				_, _ = w.Write([]byte(`{"errcode":830002,"errmsg":"file over 20M, use Range"}`))
				return
			}
			w.Header().Set("Content-Disposition", `attachment; filename="f.bin"`)
			rangeAnswer(w, r)
		})
	}
	f := newFake(t)
	f.srv.Handle("/cgi-bin/media/get", serve(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(data) // Range ignored: 200 with the whole file
	}))
	var buf bytes.Buffer
	d, err := f.c.DownloadMedia(ctx, "m", &buf)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, buf.Bytes()))
	assert.EqualValues(t, len(data), d.Size)
	assert.Equal(t, "f.bin", d.Filename)

	for name, cr := range map[string]string{
		"other bytes": "bytes 5-10/41943040",
		"no total":    "bytes 0-9",
		"missing":     "",
	} {
		g := newFake(t)
		g.srv.Handle("/cgi-bin/media/get", serve(func(w http.ResponseWriter, _ *http.Request) {
			if cr != "" {
				w.Header().Set("Content-Range", cr)
			}
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(data[:10])
		}))
		buf.Reset()
		_, err := g.c.DownloadMedia(ctx, "m", &buf)
		assert.ErrorIs(t, err, kf.ErrUnexpectedResponse, name)
		assert.Zero(t, buf.Len(), name)
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// Upload → send → download: the echo bot's media path against the fake.
func TestEndpointMediaRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	f.srv.AddImage("wmAlice", testJPEG(t))
	page, err := f.c.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: f.srv.OpenKfID()})
	require.NoError(t, err)
	require.Len(t, page.Messages, 1)
	var buf bytes.Buffer
	_, err = f.c.DownloadMedia(ctx, page.Messages[0].Image.MediaID, &buf)
	require.NoError(t, err)
	up, err := f.c.UploadMedia(ctx, media.KindImage, "echo.jpg", &buf)
	require.NoError(t, err)
	_, err = f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(), MsgID: "echo1", Content: kf.NewImage(up.MediaID)})
	require.NoError(t, err)
	sent := f.srv.Sent()
	require.Len(t, sent, 1)
	assert.Equal(t, up.MediaID, sent[0].MediaID)
}

// countingReader yields n zero bytes and counts what was read.
type countingReader struct{ n, read int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n-r.read)
	clear(p[:k])
	r.read += k
	return int(k), nil
}

// A link attachment's picture comes as pic_url in most published samples and as picurl in one SDK.
func TestKnowledgeLinkPicURLSpellings(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"title":"t","desc":"d","url":"https://u","pic_url":"https://p"}`,
		`{"title":"t","desc":"d","url":"https://u","picurl":"https://p"}`,
	} {
		var l kf.KnowledgeLink
		require.NoError(t, json.Unmarshal([]byte(body), &l), body)
		assert.Equal(t, kf.KnowledgeLink{Title: "t", Desc: "d", URL: "https://u", PicURL: "https://p"}, l, body)
	}
}

// No official page limits a link's URL scheme or a multipart filename's length, so neither is
// checked here: a link to a placeholder or non-http URL and a long filename reach WeCom as given,
// and WeCom's answer decides (the fake, as an approximation, refuses a link that is not http(s)).
func TestLinkSchemeAndFilenameLengthLeftToWeCom(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	ctx := context.Background()
	f.srv.AddText("wmAlice", "hi")
	thumb, err := f.c.UploadMedia(ctx, media.KindImage, "thumb.jpg", bytes.NewReader(testJPEG(t)))
	require.NoError(t, err)
	for i, u := range []string{"URL", "weixin://dl/business/?t=abc", "ftp://example.com/a"} {
		_, err := f.c.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmAlice", OpenKfID: f.srv.OpenKfID(),
			MsgID: fmt.Sprintf("link%d", i), Content: kf.NewLink("title", "", u, thumb.MediaID)})
		require.NotErrorIs(t, err, kf.ErrInvalidArgument, u)
		var ae *kf.APIError
		require.ErrorAs(t, err, &ae, u)
		assert.Equal(t, 40058, ae.Code, u)
		var body struct {
			Link struct {
				URL string `json:"url"`
			} `json:"link"`
		}
		require.NoError(t, json.Unmarshal(f.last(t, "/cgi-bin/kf/send_msg").Request, &body))
		assert.Equal(t, u, body.Link.URL, "sent as given")
	}

	name := strings.Repeat("很长的文件名", 40) + ".txt" // 724 bytes
	up, err := f.c.UploadMedia(ctx, media.KindFile, name, strings.NewReader("some text in a file"))
	require.NoError(t, err)
	_, _, got, ok := f.srv.Media(up.MediaID)
	require.True(t, ok)
	assert.Equal(t, name, got)
}
