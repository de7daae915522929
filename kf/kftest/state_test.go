package kftest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

func onEvent(a *api, code string, body obj) reply {
	a.t.Helper()
	body["code"] = code
	if _, ok := body["msgtype"]; !ok {
		body["msgtype"] = "text"
		body["text"] = obj{"content": "welcome!"}
	}
	return a.post("/cgi-bin/kf/send_msg_on_event", body)
}

func TestWelcomeCode(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithTokenTTL(1000*time.Hour))
	kfid := srv.OpenKfID()

	code := srv.EnterSession(customer, "qr", "from=poster")
	require.NotEmpty(t, code)

	// Not a send_msg_on_event type / missing code.
	assert.Equal(t, kftest.CodeInvalidMsgType, onEvent(a, code, obj{"msgtype": "image", "image": obj{"media_id": "x"}}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/send_msg_on_event", obj{"msgtype": "text", "text": obj{"content": "x"}}).Code)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, "nosuchcode", obj{}).Code)
	assert.Equal(t, kftest.CodeEmptyText, onEvent(a, code, obj{"msgtype": "text", "text": obj{"content": ""}}).Code)

	r := onEvent(a, code, obj{"msgid": "welcome-1"})
	require.Equal(t, 0, r.Code, r.Msg)
	assert.Equal(t, "welcome-1", r.str("msgid"))
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, code, obj{}).Code, "single use")

	s := srv.SentTo(kfid, customer)
	require.Len(t, s, 1)
	assert.True(t, s[0].OnEvent)
	assert.Equal(t, code, s[0].Code)
	assert.Equal(t, "welcome!", s[0].Text)
	assert.Equal(t, 0, srv.QuotaLeft(kfid, customer), "a welcome does not open the 48 h window")

	// No new welcome_code within 48 h of a welcome.
	assert.Empty(t, srv.EnterSession(customer, "qr", ""))
	clk.Advance(48*time.Hour + time.Second)
	assert.NotEmpty(t, srv.EnterSession(customer, "qr", ""))
}

func TestWelcomeCodeExpiresAfter20s(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	c1 := srv.EnterSession(customer, "", "")
	c2 := srv.EnterSession(other, "", "")
	clk.Advance(20*time.Second - time.Millisecond)
	assert.Equal(t, 0, onEvent(a, c1, obj{}).Code)
	clk.Advance(time.Millisecond)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, c2, obj{}).Code)
	// An unused, expired code does not count as a welcome: entering again gives a new one.
	assert.NotEmpty(t, srv.EnterSession(other, "", ""))
}

func TestWelcomeCodeOnlyWithoutRecentMessage(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, _ := newAPI(t, kftest.WithClock(clk.Now))
	srv.AddText(customer, "I wrote first")
	assert.Empty(t, srv.EnterSession(customer, "", ""), "the customer messaged in the last 48 h")
	clk.Advance(48*time.Hour + time.Second)
	assert.NotEmpty(t, srv.EnterSession(customer, "", ""))
}

func TestSendMsgOnEventDuplicateMsgID(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	srv.AddText(other, "hi")
	require.Equal(t, 0, a.send(obj{"touser": other, "msgid": "dup", "msgtype": "text", "text": obj{"content": "x"}}).Code)
	code := srv.EnterSession(customer, "", "")
	r := onEvent(a, code, obj{"msgid": "dup"})
	assert.Equal(t, kftest.DuplicateMsgIDCode, r.Code)
	assert.Equal(t, 0, onEvent(a, code, obj{"msgid": "dup2"}).Code, "the code was not used up by the failed call")
}

func TestSendMsgOnEventMenu(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	code := srv.EnterSession(customer, "", "")
	assert.Equal(t, kftest.CodeTooManyMenuItems, onEvent(a, code, obj{"msgtype": "msgmenu",
		"msgmenu": obj{"head_content": "pick", "list": menuItems(11)}}).Code)
	assert.Equal(t, 0, onEvent(a, code, obj{"msgtype": "msgmenu",
		"msgmenu": obj{"head_content": "pick", "list": menuItems(3)}}).Code)
}

func TestServiceStateGet(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	r := a.post("/cgi-bin/kf/service_state/get", obj{"open_kfid": kfid, "external_userid": customer})
	require.Equal(t, 0, r.Code)
	assert.Equal(t, 0, r.int("service_state"))
	srv.SetServiceState(kfid, customer, 3, "zhangsan")
	r = a.post("/cgi-bin/kf/service_state/get", obj{"open_kfid": kfid, "external_userid": customer})
	assert.Equal(t, 3, r.int("service_state"))
	assert.Equal(t, "zhangsan", r.str("servicer_userid"))

	assert.Equal(t, kftest.CodeMissingOpenKfID, a.post("/cgi-bin/kf/service_state/get", obj{"external_userid": customer}).Code)
	assert.Equal(t, kftest.CodeInvalidOpenKfID, a.post("/cgi-bin/kf/service_state/get", obj{"open_kfid": "wkx", "external_userid": customer}).Code)
	assert.Equal(t, kftest.CodeInvalidExternalUserID, a.post("/cgi-bin/kf/service_state/get", obj{"open_kfid": kfid}).Code)
}

// All 25 (from, to) pairs: exactly the transitions of §7 succeed, the rest are 95016.
func TestServiceStateTransitions(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	allowed := map[[2]int]bool{{0, 1}: true, {0, 2}: true, {0, 3}: true, {1, 2}: true, {1, 3}: true,
		{2, 3}: true, {3, 3}: true, {3, 4}: true}
	for from := range 5 {
		for to := range 5 {
			user := fmt.Sprintf("wmTrans%d%d", from, to)
			srv.SetServiceState(kfid, user, from, "")
			body := obj{"open_kfid": kfid, "external_userid": user, "service_state": to}
			if to == 3 {
				body["servicer_userid"] = "zhangsan"
			}
			r := a.post("/cgi-bin/kf/service_state/trans", body)
			st, _ := srv.ServiceState(kfid, user)
			if allowed[[2]int{from, to}] {
				assert.Equal(t, 0, r.Code, "%d→%d: %s", from, to, r.Msg)
				assert.Equal(t, to, st)
			} else {
				assert.Equal(t, kftest.CodeBadTransition, r.Code, "%d→%d", from, to)
				assert.Equal(t, from, st, "a refused transition changes nothing")
			}
		}
	}
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/service_state/trans",
		obj{"open_kfid": kfid, "external_userid": customer, "service_state": 5}).Code)
	assert.Equal(t, kftest.CodeInvalidParameter, a.post("/cgi-bin/kf/service_state/trans",
		obj{"open_kfid": kfid, "external_userid": customer}).Code, "service_state required")
}

func TestServiceStateTransServicer(t *testing.T) {
	t.Parallel()
	srv, a := newAPI(t)
	kfid := srv.OpenKfID()
	srv.AddServicer("on", kftest.ServicerReceiving)
	srv.AddServicer("off", kftest.ServicerStopped)
	srv.AddServicer("new", kftest.ServicerNotActivated)
	other := srv.AddAccount("other")
	srv.AddServicerTo(other, "elsewhere", kftest.ServicerReceiving)
	tests := []struct {
		servicer string
		code     int
	}{
		{"", kftest.CodeInvalidParameter},
		{"nobody", kftest.CodeNotServicer},
		{"elsewhere", kftest.CodeNotServicer},
		{"new", kftest.CodeNotServicer},
		{"off", kftest.CodeServicerNotReceiving},
		{"on", 0},
	}
	for _, tc := range tests {
		t.Run(tc.servicer, func(t *testing.T) {
			user := "wm" + tc.servicer
			r := a.post("/cgi-bin/kf/service_state/trans", obj{"open_kfid": kfid, "external_userid": user,
				"service_state": 3, "servicer_userid": tc.servicer})
			assert.Equal(t, tc.code, r.Code, r.Msg)
		})
	}
	st, sv := srv.ServiceState(kfid, "wmon")
	assert.Equal(t, 3, st)
	assert.Equal(t, "on", sv)
}

// msg_code: on the session's first change to 2 and to 3 (48 h) and on the change to 4 (20 s).
func TestServiceStateTransMsgCode(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithTokenTTL(1000*time.Hour))
	kfid := srv.OpenKfID()
	srv.AddServicer("a", kftest.ServicerReceiving)
	srv.AddServicer("b", kftest.ServicerReceiving)
	srv.AddText(customer, "hi")
	trans := func(state int, servicer string) reply {
		return a.post("/cgi-bin/kf/service_state/trans", obj{"open_kfid": kfid, "external_userid": customer,
			"service_state": state, "servicer_userid": servicer})
	}
	r := trans(1, "")
	require.Equal(t, 0, r.Code)
	assert.Empty(t, r.str("msg_code"), "no code for the assistant")
	queue := trans(2, "").str("msg_code")
	assert.NotEmpty(t, queue)
	taken := trans(3, "a").str("msg_code")
	assert.NotEmpty(t, taken)
	assert.Empty(t, trans(3, "b").str("msg_code"), "a transfer is not a first change")
	end := trans(4, "").str("msg_code")
	require.NotEmpty(t, end)

	st, _ := srv.ServiceState(kfid, customer)
	require.Equal(t, 4, st)
	assert.Equal(t, kftest.CodeSessionEnded, a.sendText(customer, "bye?").Code)
	assert.Equal(t, 0, onEvent(a, end, obj{}).Code, "the end code sends in state 4")
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, end, obj{}).Code)

	// The queue code lives 48 h, the end code 20 s.
	clk.Advance(47 * time.Hour)
	assert.Equal(t, 0, onEvent(a, queue, obj{}).Code)
	clk.Advance(2 * time.Hour)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, taken, obj{}).Code)

	// A new customer message after the end starts a new session in state 0.
	srv.AddText(customer, "hello again")
	st, sv := srv.ServiceState(kfid, customer)
	assert.Equal(t, 0, st)
	assert.Empty(t, sv)
	assert.Equal(t, 0, a.sendText(customer, "hi again").Code)
	assert.NotEmpty(t, trans(2, "").str("msg_code"), "the new session's first queue change has a code again")
}

func TestEndCodeExpires(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now))
	kfid := srv.OpenKfID()
	srv.SetServiceState(kfid, customer, 3, "a")
	end := a.post("/cgi-bin/kf/service_state/trans", obj{"open_kfid": kfid, "external_userid": customer,
		"service_state": 4}).str("msg_code")
	require.NotEmpty(t, end)
	clk.Advance(20 * time.Second)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, end, obj{}).Code)
}
