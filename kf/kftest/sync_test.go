package kftest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func TestSyncRequiresOpenKfID(t *testing.T) {
	t.Parallel()
	_, a := newAPI(t)
	assert.Equal(t, kftest.CodeMissingOpenKfID, a.post("/cgi-bin/kf/sync_msg", obj{}).Code)
	assert.Equal(t, kftest.CodeMissingOpenKfID, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": ""}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/sync_msg", obj{"open_kfid": "wkunknown"}).Code)
}

func TestSyncPagingHasMore(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t, kftest.WithPageSize(3))
	var want []string
	for i := range 10 {
		want = append(want, srv.AddText(customer, fmt.Sprint("m", i)))
	}
	var got []string
	cursor := ""
	var hasMore []int
	var sizes []int
	for {
		p := a.sync(obj{"cursor": cursor})
		require.Equal(t, 0, p.Code, p.Msg)
		for _, it := range items(t, p) {
			got = append(got, it.MsgID)
		}
		sizes = append(sizes, len(p.MsgList))
		hasMore = append(hasMore, p.HasMore)
		require.NotEmpty(t, p.NextCursor, "next_cursor is always set")
		cursor = p.NextCursor
		if p.HasMore == 0 {
			break
		}
	}
	assert.Equal(t, []int{3, 3, 3, 1}, sizes)
	assert.Equal(t, []int{1, 1, 1, 0}, hasMore)
	assert.Equal(t, want, got, "every message once, in order")

	// The last cursor is a resumption point: nothing now, then exactly the new messages.
	p := a.sync(obj{"cursor": cursor})
	assert.Empty(t, p.MsgList)
	assert.Equal(t, 0, p.HasMore)
	id := srv.AddText(customer, "later")
	p = a.sync(obj{"cursor": cursor})
	its := items(t, p)
	require.Len(t, its, 1)
	assert.Equal(t, id, its[0].MsgID)
}

func TestSyncLimit(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	for i := range 5 {
		srv.AddText(customer, fmt.Sprint(i))
	}
	tests := []struct {
		name  string
		limit any
		code  int
		n     int
	}{
		{"default", nil, 0, 5},
		{"zero means default", 0, 0, 5},
		{"two", 2, 0, 2},
		{"max", 1000, 0, 5},
		{"over max", 1001, kftest.CodeInvalidParameter, 0},
		{"negative", -1, kftest.CodeInvalidParameter, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := obj{}
			if tc.limit != nil {
				body["limit"] = tc.limit
			}
			p := a.sync(body)
			require.Equal(t, tc.code, p.Code, p.Msg)
			assert.Len(t, p.MsgList, tc.n)
		})
	}
	srv.SetPageSize(4)
	p := a.sync(obj{"limit": 5})
	assert.Len(t, p.MsgList, 4, "page size caps the limit")
	assert.Equal(t, 1, p.HasMore)
}

func TestSyncCursorIsOpaqueAndChecked(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t, kftest.WithPageSize(2))
	for i := range 5 {
		srv.AddText(customer, fmt.Sprint(i))
	}
	p := a.sync(obj{})
	require.Equal(t, 0, p.Code)
	cur := p.NextCursor
	assert.LessOrEqual(t, len(cur), kftest.MaxCursorBytes)
	_, err := strconv.Atoi(cur)
	assert.Error(t, err, "the cursor is not a plain index")

	raw, err := base64.RawURLEncoding.DecodeString(cur)
	require.NoError(t, err)
	raw[8] ^= 1 // move the position by one
	forged := base64.RawURLEncoding.EncodeToString(raw)

	other := srv.AddAccount("other")
	srv.AddMessage(kftest.Message{OpenKfID: other, ExternalUserID: customer, MsgType: "text", Body: obj{"content": "x"}})

	bad := map[string]string{
		"plain index":       "2",
		"garbage":           "not a cursor!",
		"forged position":   forged,
		"truncated":         cur[:len(cur)-2],
		"too long":          cur + strings.Repeat("A", kftest.MaxCursorBytes),
		"another account's": "", // filled below
	}
	// A cursor from the other account is refused on this one.
	po := a.sync(obj{"open_kfid": other})
	require.Equal(t, 0, po.Code)
	bad["another account's"] = po.NextCursor
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, kftest.CodeInvalidParameter, a.sync(obj{"cursor": c}).Code)
		})
	}
	// The genuine cursor still works.
	assert.Equal(t, 0, a.sync(obj{"cursor": cur}).Code)
}

func TestSyncToken(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	other := srv.AddAccount("other")
	srv.AddText(customer, "hi")

	tok := srv.IssueSyncToken(srv.OpenKfID())
	assert.LessOrEqual(t, len(tok), 128)
	assert.Equal(t, 0, a.sync(obj{}).Code, "token is optional")
	assert.Equal(t, 0, a.sync(obj{"token": tok}).Code)
	assert.Equal(t, 0, a.sync(obj{"token": tok}).Code, "a token can be used for several pages")
	assert.Equal(t, kftest.CodeInvalidMsgToken, a.sync(obj{"token": "ENCbogus"}).Code)
	assert.Equal(t, kftest.CodeInvalidMsgToken, a.sync(obj{"token": srv.IssueSyncToken(other)}).Code, "another account's token")

	clk.Advance(10*time.Minute - time.Second)
	assert.Equal(t, 0, a.sync(obj{"token": tok}).Code)
	clk.Advance(time.Second)
	assert.Equal(t, kftest.CodeInvalidMsgToken, a.sync(obj{"token": tok}).Code, "valid 10 minutes")
}

func TestSyncThreeDayWindow(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	srv.AddMessage(kftest.Message{ExternalUserID: customer, MsgType: "text", Body: obj{"content": "old"},
		SendTime: t0.Add(-72*time.Hour - time.Second)})
	edge := srv.AddMessage(kftest.Message{ExternalUserID: customer, MsgType: "text", Body: obj{"content": "edge"},
		SendTime: t0.Add(-72 * time.Hour)})
	recent := srv.AddText(customer, "recent")

	got, _, _ := a.syncAll("", 0)
	ids := []string{}
	for _, it := range got {
		ids = append(ids, it.MsgID)
	}
	assert.Equal(t, []string{edge, recent}, ids, "without a cursor nothing older than 3 days")

	// Paging with a tiny page skips the old message on every page too.
	srv.SetPageSize(1)
	got, _, pages := a.syncAll("", 0)
	assert.Len(t, got, 2)
	assert.Equal(t, 2, pages)
}

func TestSyncNeverReturnsSentMessages(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	in := srv.AddText(customer, "hello")
	r := a.sendText(customer, "reply")
	require.Equal(t, 0, r.Code, r.Msg)
	got, _, _ := a.syncAll("", 0)
	require.Len(t, got, 1)
	assert.Equal(t, in, got[0].MsgID)
	assert.Len(t, srv.Sent(), 1)
}

func TestSyncVoiceFormat(t *testing.T) {
	t.Parallel()
	_, a := newAPI(t)
	assert.Equal(t, 0, a.sync(obj{"voice_format": 1}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.sync(obj{"voice_format": 2}).Code)
}

func TestSyncItemShapes(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	st := time.Now().Add(-time.Minute).Truncate(time.Second)
	textID := srv.AddMessage(kftest.Message{ExternalUserID: customer, MsgType: "text", SendTime: st,
		Body: obj{"content": "你好"}})
	srv.AddMenuClick(customer, "101", "yes")
	srv.AddServicerText(customer, "zhangsan", "human here")
	img := srv.AddImage(customer, pngBytes(t, 4, 4))
	srv.EnterSession(other, "scene1", "p=1")
	srv.AddEvent("msg_send_fail", obj{"external_userid": customer, "fail_msgid": "abc", "fail_type": 4})

	got, _, _ := a.syncAll("", 0)
	require.Len(t, got, 6)

	tx := got[0]
	assert.Equal(t, textID, tx.MsgID)
	assert.Greater(t, len(tx.MsgID), 32, "msgids may exceed 32 characters")
	assert.Equal(t, kfid, tx.OpenKfID)
	assert.Equal(t, customer, tx.ExternalUserID)
	assert.Equal(t, st.Unix(), tx.SendTime)
	assert.Equal(t, 3, tx.Origin)
	assert.Equal(t, "text", tx.MsgType)
	assert.Equal(t, "你好", tx.Text.Content)
	assert.Equal(t, "101", got[1].Text.MenuID)

	assert.Equal(t, 5, got[2].Origin)
	assert.Equal(t, "zhangsan", got[2].ServicerUserID)

	assert.Equal(t, "image", got[3].MsgType)
	data, ct, _, ok := srv.Media(got[3].Image.MediaID)
	require.True(t, ok)
	assert.Equal(t, "image/png", ct)
	assert.NotEmpty(t, data)
	_ = img

	ev := got[4]
	assert.Equal(t, 4, ev.Origin)
	assert.Equal(t, "event", ev.MsgType)
	assert.Equal(t, "enter_session", ev.Event["event_type"])
	assert.Equal(t, kfid, ev.Event["open_kfid"])
	assert.Equal(t, other, ev.Event["external_userid"])
	assert.Equal(t, "scene1", ev.Event["scene"])
	assert.Equal(t, "p=1", ev.Event["scene_param"])
	assert.NotEmpty(t, ev.Event["welcome_code"])
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(ev.Raw, &top))
	assert.NotContains(t, top, "open_kfid", "events carry ids inside the event body only")

	assert.Equal(t, "msg_send_fail", got[5].Event["event_type"])
	assert.EqualValues(t, 4, got[5].Event["fail_type"])
	assert.Equal(t, 6, srv.Messages(kfid))
}

func TestSyncEmptyPagesWithHasMore(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(customer, "x")
	srv.SetFaults(kftest.Faults{EmptyPageRate: 1})
	p := a.sync(obj{})
	require.Equal(t, 0, p.Code)
	assert.Empty(t, p.MsgList)
	assert.Equal(t, 1, p.HasMore, "keep pulling while has_more, even if the page is empty")
	srv.SetFaults(kftest.Faults{})
	p = a.sync(obj{"cursor": p.NextCursor})
	assert.Len(t, p.MsgList, 1)
	assert.Equal(t, 0, p.HasMore)
}
