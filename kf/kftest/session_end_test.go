package kftest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// A servicer ending the session: state 4, a session_status_change event (change_type 3) whose
// msg_code sends one message within 20 s.
func TestEndSessionByServicer(t *testing.T) {
	t.Parallel()
	clk := clockAt(t0)
	srv, a := newAPI(t, kftest.WithClock(clk.Now), kftest.WithTokenTTL(1000*time.Hour))
	kfid := srv.OpenKfID()
	srv.AddText(customer, "hi")
	srv.SetServiceState(kfid, customer, kftest.StateServicer, "zhangsan")
	code := srv.EndSessionByServicer(kfid, customer)
	require.NotEmpty(t, code)
	st, sv := srv.ServiceState(kfid, customer)
	assert.Equal(t, kftest.StateEnded, st)
	assert.Empty(t, sv)

	got, _, _ := a.syncAll("", 1000)
	require.Len(t, got, 2)
	ev := got[1]
	assert.Equal(t, "event", ev.MsgType)
	assert.Equal(t, map[string]any{"event_type": "session_status_change", "open_kfid": kfid,
		"external_userid": customer, "change_type": float64(3), "old_servicer_userid": "zhangsan",
		"msg_code": code}, ev.Event)

	clk.Advance(19 * time.Second)
	assert.Equal(t, 0, onEvent(a, code, obj{}).Code)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, code, obj{}).Code, "single use")

	// Another session, ended and answered too late.
	srv.AddText(customer, "again")
	srv.SetServiceState(kfid, customer, kftest.StateServicer, "zhangsan")
	late := srv.EndSessionByServicer(kfid, customer)
	clk.Advance(20 * time.Second)
	assert.Equal(t, kftest.CodeInvalidMsgToken, onEvent(a, late, obj{}).Code, "expired after 20 s")

	assert.Panics(t, func() { srv.EndSessionByServicer(kfid, customer) }, "not with a servicer")
}
