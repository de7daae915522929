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

const pathSendOnEvent = "/cgi-bin/kf/send_msg_on_event"

// newClockEnv is newEnv with one manual clock for kftest and the Channel.
func newClockEnv(t *testing.T, opts ...ChannelOption) (*env, *kftest.ManualClock) {
	t.Helper()
	clk := kftest.NewManualClock(time.Now())
	srv := kftest.NewServer(kftest.WithClock(clk.Now))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, dir: t.TempDir()}
	e.start(append([]ChannelOption{WithChannelClock(clk.Now)}, opts...)...)
	return e, clk
}

// onEventSends returns what was sent with send_msg_on_event to user.
func onEventSends(e *env, user string) []kftest.Sent {
	var out []kftest.Sent
	for _, s := range e.srv.SentTo(e.srv.OpenKfID(), user) {
		if s.OnEvent {
			out = append(out, s)
		}
	}
	return out
}

// surveyBot hands the customer to a servicer on "转人工", answers the survey clicks, and closes
// ended sessions with the survey menu.
func surveyBot(t *testing.T, e *env) {
	rt := NewRouter()
	rt.OnKeyword("转人工", HandoffHandler("zhangsan", "正在为您转接人工客服…"))
	survey, err := rt.Menu("本次服务您满意吗？").
		Click("csat_good", "满意", func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, "感谢您的评价！") }).
		Click("csat_bad", "不满意", func(ctx context.Context, m *Message, r Replier) error {
			return r.Text(ctx, "抱歉，我们会改进。")
		}).
		Build("")
	require.NoError(t, err)
	e.ch.OnSessionEnd(func(ctx context.Context, se *SessionEnd) (Content, error) { return survey, nil })
	e.ch.OnMessage(rt.Handle)
}

// A servicer ends the session: the survey goes out with the event's msg_code, once, even when the
// event's handler is rerun; the customer's click on it is routed back.
func TestSessionEndSurvey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastRetry)
	e.srv.AddServicer("zhangsan", kftest.ServicerReceiving)
	surveyBot(t, e)
	var eventRuns atomic.Int32
	ended := make(chan *Message, 4)
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error {
		if m.Event != nil && m.Event.EventType == EventSessionStatusChange {
			ended <- m
			if eventRuns.Add(1) == 1 {
				return Retry(errors.New("our CRM is down"))
			}
		}
		return nil
	})
	e.srv.AddText("ann", "转人工")
	e.notify()
	e.waitSent("ann", 1)
	e.settle()
	st, sv := e.srv.ServiceState(e.srv.OpenKfID(), "ann")
	require.Equal(t, kftest.StateServicer, st)
	require.Equal(t, "zhangsan", sv)

	code := e.srv.EndSessionByServicer(e.srv.OpenKfID(), "ann")
	e.notify()
	m := <-ended
	assert.Equal(t, SessionEnded, m.Event.ChangeType)
	assert.Equal(t, code, m.Event.MsgCode)
	<-ended // the rerun
	e.settle()
	sent := onEventSends(e, "ann")
	require.Len(t, sent, 1, "the survey, once")
	assert.Equal(t, "msgmenu", sent[0].MsgType)
	assert.EqualValues(t, 2, eventRuns.Load())
	assert.Equal(t, 2, e.srv.Calls(pathSendOnEvent), "the rerun tried the code again")
	rejected := e.srv.Rejected()
	require.NotEmpty(t, rejected)
	assert.Equal(t, kftest.CodeInvalidMsgToken, rejected[len(rejected)-1].Code, "single use")

	e.srv.AddMenuClick("ann", "csat_good", "满意")
	e.notify()
	all := e.waitSent("ann", 3)
	assert.Equal(t, "感谢您的评价！", all[2].Text)
}

// waitHandled waits until the Channel has finished n messages in all.
func (e *env) waitHandled(n int64) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.ch.Stats().Handled >= n }, 10*time.Second, 5*time.Millisecond,
		"stats %+v", e.ch.Stats())
	e.settle()
}

// A session-end event handled after the code's 20 s sends nothing (a replay after an outage, a
// slow queue); a code used within them works.
func TestSessionEndCodeExpires(t *testing.T) {
	t.Parallel()
	e, clk := newClockEnv(t)
	surveyBot(t, e)
	user := "bob"
	e.srv.AddText(user, "hi")
	e.srv.SetServiceState(e.srv.OpenKfID(), user, kftest.StateServicer, "zhangsan")
	e.srv.EndSessionByServicer(e.srv.OpenKfID(), user)
	clk.Advance(21 * time.Second)
	e.notify()
	e.waitHandled(2)
	assert.Empty(t, onEventSends(e, user))
	assert.Zero(t, e.srv.Calls(pathSendOnEvent), "an expired code is not tried")

	e.srv.AddText(user, "again")
	e.srv.SetServiceState(e.srv.OpenKfID(), user, kftest.StateServicer, "zhangsan")
	e.srv.EndSessionByServicer(e.srv.OpenKfID(), user)
	clk.Advance(19 * time.Second)
	e.notify()
	e.waitHandled(4)
	assert.Len(t, onEventSends(e, user), 1)
}

// EndSession ends a servicer's session and sends the closing message with the msg_code trans
// returns; WeCom refuses to end a session the bot has (95016); a closing message that cannot be
// made within 20 s is not sent and the error says so.
func TestEndSession(t *testing.T) {
	t.Parallel()
	e, clk := newClockEnv(t)
	ctx := context.Background()
	kfid := e.srv.OpenKfID()
	var slow atomic.Bool
	e.ch.OnSessionEnd(func(ctx context.Context, se *SessionEnd) (Content, error) {
		if slow.Load() {
			clk.Advance(25 * time.Second)
		}
		assert.Nil(t, se.Event)
		return NewText("会话已结束，感谢您的咨询。"), nil
	})
	e.ch.OnMessage(echo)

	e.srv.AddText("cat", "hi")
	e.srv.SetServiceState(kfid, "cat", kftest.StateServicer, "zhangsan")
	require.NoError(t, e.ch.EndSession(ctx, kfid, "cat"))
	st, _ := e.srv.ServiceState(kfid, "cat")
	assert.Equal(t, kftest.StateEnded, st)
	sent := onEventSends(e, "cat")
	require.Len(t, sent, 1)
	assert.Equal(t, "会话已结束，感谢您的咨询。", sent[0].Text)

	e.srv.AddText("dan", "hi")
	assert.ErrorIs(t, e.ch.EndSession(ctx, kfid, "dan"), ErrInvalidStateTransition, "state 0 cannot end (§7)")

	slow.Store(true)
	e.srv.AddText("eve", "hi")
	e.srv.SetServiceState(kfid, "eve", kftest.StateServicer, "zhangsan")
	err := e.ch.EndSession(ctx, kfid, "eve")
	assert.ErrorIs(t, err, errCodeExpired)
	assert.ErrorContains(t, err, "session ended")
	assert.Empty(t, onEventSends(e, "eve"))
	st, _ = e.srv.ServiceState(kfid, "eve")
	assert.Equal(t, kftest.StateEnded, st)
}

// A crash after the survey went out, before the event was marked done: the replayed event does not
// send it again (the code is single use, the msgid the same).
func TestSessionEndCrashReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	surveyBot(t, e)
	stuck := make(chan struct{}, 1)
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error {
		if m.Event != nil && m.Event.EventType == EventSessionStatusChange {
			stuck <- struct{}{}
			<-ctx.Done() // the process dies here, the event not done
		}
		return ctx.Err()
	})
	e.srv.AddText("ann", "hi")
	e.srv.SetServiceState(e.srv.OpenKfID(), "ann", kftest.StateServicer, "zhangsan")
	e.srv.EndSessionByServicer(e.srv.OpenKfID(), "ann")
	e.notify()
	<-stuck
	require.Len(t, onEventSends(e, "ann"), 1)
	e.crashAndRestart()
	replayed := make(chan struct{}, 1)
	surveyBot(t, e)
	e.ch.OnEvent(func(ctx context.Context, m *Message, r Replier) error {
		if m.Event != nil && m.Event.EventType == EventSessionStatusChange {
			replayed <- struct{}{}
		}
		return nil
	})
	select {
	case <-replayed:
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not replayed")
	}
	e.settle()
	assert.Len(t, onEventSends(e, "ann"), 1, "the survey once")
	assert.Equal(t, 2, e.srv.Calls(pathSendOnEvent))
}
