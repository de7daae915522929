package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/examples/exampletest"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// app is the handoff bot wired as main wires it, against kftest.
type app struct {
	t     *testing.T
	wecom *kftest.Server
	ch    *kf.Channel
	url   string
	logs  *exampletest.Buffer
}

// newTestApp starts kftest (with clock, if not nil, for both sides) and the bot, with extra
// channel options after main's.
func newTestApp(t *testing.T, servicer string, clock *kftest.ManualClock, setup func(*kftest.Server), extra ...kf.ChannelOption) *app {
	t.Helper()
	var wopts []kftest.Option
	if clock != nil {
		wopts = append(wopts, kftest.WithClock(clock.Now))
		extra = append(extra, kf.WithChannelClock(clock.Now))
	}
	wecom := kftest.NewServer(wopts...)
	t.Cleanup(wecom.Close)
	if setup != nil {
		setup(wecom)
	}
	cfg, opts := exampletest.Config(t, wecom)
	logs := &exampletest.Buffer{}
	h, ch, err := newApp(cfg.KF(), servicer, slog.New(slog.NewTextHandler(logs, nil)), append(opts, extra...)...)
	require.NoError(t, err)
	return &app{t: t, wecom: wecom, ch: ch, url: exampletest.Serve(t, h, ch) + "/wxkf", logs: logs}
}

// say adds a customer message, delivers its callback, and waits until the bot has handled it.
func (a *app) say(user, text string) {
	a.t.Helper()
	a.wecom.AddText(user, text)
	a.deliver()
}

// deliver sends one callback and waits until everything pulled is handled.
func (a *app) deliver() {
	a.t.Helper()
	exampletest.Deliver(a.t, a.wecom, a.url, a.ch, exampletest.Dispatched, a.logs)
}

func (a *app) sent(user string) []string {
	var out []string
	for _, s := range a.wecom.SentTo(a.wecom.OpenKfID(), user) {
		out = append(out, s.Text)
	}
	return out
}

func (a *app) state(user string) (int, string) { return a.wecom.ServiceState(a.wecom.OpenKfID(), user) }

// "转人工" hands the session to the servicer with one notice; the bot is then quiet; when the
// session is back with the bot (state 1) it answers again.
func TestHandoffToServicer(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	a := newTestApp(t, "agent7", clock, func(s *kftest.Server) { s.AddServicer("agent7", kftest.ServicerReceiving) })

	a.say("oscar", "转人工")
	assert.Equal(t, []string{"正在为您转接人工客服…"}, a.sent("oscar"))
	st, who := a.state("oscar")
	assert.Equal(t, kftest.StateServicer, st)
	assert.Equal(t, "agent7", who)

	a.say("oscar", "在吗？")
	a.say("oscar", "人工")
	assert.Len(t, a.sent("oscar"), 1, "the bot stays quiet while a human has the session")
	assert.Empty(t, a.wecom.Rejected(), "quiet means not even trying: no 95018")

	// The session comes back to the bot. The Channel trusts a session state it learned for 5 s
	// (unless a session_status_change says otherwise): move the clock past that.
	a.wecom.SetServiceState(a.wecom.OpenKfID(), "oscar", kftest.StateAssist, "")
	clock.Advance(6 * time.Second)
	a.say("oscar", "你好")
	sent := a.sent("oscar")
	require.Len(t, sent, 2)
	assert.Contains(t, sent[1], "「你好」")
}

// Without a servicer the customer is queued; a servicer takes the session from the queue and
// ends it (session_status_change events); the customer's next message is answered by the bot.
func TestHandoffQueueThenSessionEnds(t *testing.T) {
	t.Parallel()
	clock := kftest.NewManualClock(time.Now())
	a := newTestApp(t, "", clock, nil)
	kfid := a.wecom.OpenKfID()

	a.say("pat", " 人工 ")
	assert.Equal(t, []string{"正在为您转接人工客服…"}, a.sent("pat"))
	st, _ := a.state("pat")
	assert.Equal(t, kftest.StateQueued, st)

	a.say("pat", "还要等多久？")
	assert.Len(t, a.sent("pat"), 1, "quiet while queued")

	a.wecom.SetServiceState(kfid, "pat", kftest.StateServicer, "agent1")
	a.wecom.AddEvent("session_status_change", map[string]any{"external_userid": "pat", "change_type": 1, "new_servicer_userid": "agent1"})
	a.say("pat", "您好")
	assert.Len(t, a.sent("pat"), 1, "quiet while a servicer has it")

	a.wecom.SetServiceState(kfid, "pat", kftest.StateEnded, "")
	a.wecom.AddEvent("session_status_change", map[string]any{"external_userid": "pat", "change_type": 3, "old_servicer_userid": "agent1"})
	// The Channel forgets its cached session state on session_status_change; the clock also moves
	// past that cache's 5 s so the test does not depend on it.
	clock.Advance(6 * time.Second)
	a.say("pat", "谢谢") // a message in an ended session opens a new one (state 0)
	sent := a.sent("pat")
	require.Len(t, sent, 2, "logs:\n%s", a.logs)
	assert.Contains(t, sent[1], "「谢谢」")

	logs := a.logs.String()
	assert.Contains(t, logs, "session_status_change")
	assert.Contains(t, logs, `change="taken from queue"`)
	assert.Contains(t, logs, "change=ended")
	assert.Contains(t, logs, "old_servicer=agent1")
}

// A servicer who is not receiving (95019) is skipped: the customer goes to the queue.
func TestHandoffFallsBackToQueue(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "agent9", nil, func(s *kftest.Server) { s.AddServicer("agent9", kftest.ServicerStopped) })
	a.say("ruth", "转人工")
	st, _ := a.state("ruth")
	assert.Equal(t, kftest.StateQueued, st)
	assert.Equal(t, []string{"正在为您转接人工客服…"}, a.sent("ruth"))
}

// A handoff that fails altogether is told to the customer.
func TestHandoffFailureIsTold(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "", nil, nil, kf.WithClientOptions(kf.WithRetry(1, 0, 0)))
	a.wecom.SetFaults(kftest.Faults{BusyRate: 1, Paths: []string{"/cgi-bin/kf/service_state/trans"}})
	a.say("sam", "转人工")
	assert.Equal(t, []string{"正在为您转接人工客服…", "抱歉，暂时无法转接人工客服，请稍后再试。"}, a.sent("sam"))
	st, _ := a.state("sam")
	assert.Equal(t, kftest.StateNew, st)
	assert.Contains(t, a.logs.String(), "handoff failed")
}

// Ordinary messages are answered with how to reach a human; the welcome offers a menu button.
func TestHandoffAnswersAndWelcomes(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "", nil, nil)
	a.say("tom", "价格是多少？")
	assert.Equal(t, []string{"我是机器人助手，暂时只会复述：「价格是多少？」\n需要人工服务请回复“人工”。"}, a.sent("tom"))

	require.NotEmpty(t, a.wecom.EnterSession("uma", "", ""))
	a.deliver()
	sent := a.wecom.SentTo(a.wecom.OpenKfID(), "uma")
	require.Len(t, sent, 1)
	assert.True(t, sent[0].OnEvent)
	assert.Equal(t, "msgmenu", sent[0].MsgType)
	assert.Contains(t, string(sent[0].Body), `"content":"转人工"`)

	a.wecom.AddMenuClick("uma", kf.MenuIDHandoff, "转人工") // the welcome menu's 转人工 item
	a.deliver()
	st, _ := a.state("uma")
	assert.Equal(t, kftest.StateQueued, st)
	assert.Equal(t, "正在为您转接人工客服…", a.sent("uma")[1])
}

// run fails with the missing key named, before listening.
func TestRunNamesMissingConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"wechatcom_corp_id":"ww1"}`), 0o600))
	err := run(context.Background(), dir, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "wechatcom_kf_secret")
}
