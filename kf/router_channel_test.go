package kf

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// Through a Channel and kftest: a menu click and a keyword reach their routes; a route that fails
// transiently is run again and answers once; the menu's 转人工 item hands the session over.
func TestRouterThroughChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry)
	e.srv.AddServicer("agent1", kftest.ServicerReceiving)
	var fails atomic.Int32
	rt := NewRouter()
	menu, err := rt.Menu("请选择：").
		Click("hours", "营业时间", func(ctx context.Context, m *Message, r Replier) error {
			if fails.Add(1) == 1 {
				return Retry(errors.New("the opening hours service is down"))
			}
			return r.Text(ctx, "9:00-18:00")
		}).
		Handoff("转人工", "agent1", "正在为您转接人工客服…").
		Build("")
	require.NoError(t, err)
	rt.OnKeyword("菜单", func(ctx context.Context, m *Message, r Replier) error { return r.Menu(ctx, menu) })
	e.ch.OnMessage(rt.Handle)

	e.srv.AddText("ann", "菜单")
	e.notify()
	sent := e.waitSent("ann", 1)
	assert.Equal(t, "msgmenu", sent[0].MsgType)
	e.srv.AddMenuClick("ann", "hours", "营业时间")
	e.notify()
	e.waitTexts("ann", []string{"", "9:00-18:00"}, 5*time.Second)
	e.srv.AddMenuClick("ann", MenuIDHandoff+".agent1", "转人工")
	e.notify()
	e.waitTexts("ann", []string{"", "9:00-18:00", "正在为您转接人工客服…"}, 5*time.Second)
	e.settle()
	st, sv := e.srv.ServiceState(e.srv.OpenKfID(), "ann")
	assert.Equal(t, kftest.StateServicer, st)
	assert.Equal(t, "agent1", sv)
	assert.EqualValues(t, 2, fails.Load())
	assert.EqualValues(t, 1, e.ch.Stats().Retries)
}
