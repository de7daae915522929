package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/examples/exampletest"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// app is the FAQ bot wired as main wires it, against kftest.
type app struct {
	t     *testing.T
	wecom *kftest.Server
	ch    *kf.Channel
	url   string
	logs  *exampletest.Buffer
}

func newTestApp(t *testing.T, servicer string, burst int) *app {
	t.Helper()
	return newTestAppWith(t, settings{Servicer: servicer, Every: time.Hour, Burst: burst})
}

func newTestAppWith(t *testing.T, s settings) *app {
	t.Helper()
	servicer := s.Servicer
	wecom := kftest.NewServer()
	t.Cleanup(wecom.Close)
	if servicer != "" {
		wecom.AddServicer(servicer, kftest.ServicerReceiving)
	}
	cfg, opts := exampletest.Config(t, wecom)
	logs := &exampletest.Buffer{}
	h, ch, err := newApp(cfg.KF(), s, slog.New(slog.NewTextHandler(logs, nil)), opts...)
	require.NoError(t, err)
	return &app{t: t, wecom: wecom, ch: ch, url: exampletest.Serve(t, h, ch) + "/wxkf/", logs: logs}
}

// deliver sends one callback and waits until everything pulled is handled.
func (a *app) deliver() {
	a.t.Helper()
	exampletest.Deliver(a.t, a.wecom, a.url, a.ch, exampletest.Handled, a.logs)
}

func (a *app) say(user, text string) {
	a.t.Helper()
	a.wecom.AddText(user, text)
	a.deliver()
}

func (a *app) click(user, id, label string) {
	a.t.Helper()
	a.wecom.AddMenuClick(user, id, label)
	a.deliver()
}

// last returns the last message sent to user.
func (a *app) last(user string) kftest.Sent {
	a.t.Helper()
	sent := a.wecom.SentTo(a.wecom.OpenKfID(), user)
	require.NotEmpty(a.t, sent)
	return sent[len(sent)-1]
}

// Keywords and the order-number pattern are answered; anything else gets the FAQ menu, whose
// clicks come back to the same answers.
func TestFAQRoutes(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "", 100)
	a.say("ann", "营业时间")
	assert.Equal(t, faqs[0].answer, a.last("ann").Text)
	a.say("ann", " 怎么退货 ")
	assert.Equal(t, faqs[2].answer, a.last("ann").Text)
	a.say("ann", "202412250001234")
	assert.Contains(t, a.last("ann").Text, "订单 202412250001234 已发货")

	a.say("ann", "你们卖什么？")
	menu := a.last("ann")
	require.Equal(t, "msgmenu", menu.MsgType)
	for _, f := range faqs {
		assert.Contains(t, string(menu.Body), `"id":"`+f.id+`"`)
	}
	assert.Contains(t, string(menu.Body), `"content":"转人工"`)
	a.click("ann", "faq_address", "门店地址")
	assert.Equal(t, faqs[1].answer, a.last("ann").Text)
	assert.Contains(t, a.logs.String(), `msg="wxkf: turn"`)
}

// 转人工 from the menu, a human answers, the human ends the session: the survey arrives with the
// session's msg_code, and the customer's rating is thanked.
func TestFAQHandoffAndSurvey(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "agent1", 100)
	a.say("bob", "随便问问")
	a.click("bob", kf.MenuIDHandoff+".agent1", "转人工")
	assert.Equal(t, noticeHandoff, a.last("bob").Text)
	st, sv := a.wecom.ServiceState(a.wecom.OpenKfID(), "bob")
	require.Equal(t, kftest.StateServicer, st)
	require.Equal(t, "agent1", sv)

	a.say("bob", "营业时间")
	assert.Equal(t, noticeHandoff, a.last("bob").Text, "quiet while the human has the session")

	a.wecom.EndSessionByServicer(a.wecom.OpenKfID(), "bob")
	a.deliver()
	survey := a.last("bob")
	assert.True(t, survey.OnEvent, "sent with send_msg_on_event")
	assert.Equal(t, "msgmenu", survey.MsgType)
	assert.Contains(t, string(survey.Body), "您对服务满意吗")

	a.click("bob", "csat_3", "满意")
	assert.Equal(t, thanks, a.last("bob").Text)
	assert.Contains(t, a.logs.String(), "score=good")
}

// One customer writing too fast gets one notice, then silence; another customer is unaffected.
func TestFAQLimitCustomers(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, "", 3)
	for range 8 {
		a.wecom.AddText("cat", "营业时间")
	}
	a.deliver()
	var texts []string
	for _, s := range a.wecom.SentTo(a.wecom.OpenKfID(), "cat") {
		texts = append(texts, s.Text)
	}
	assert.Equal(t, []string{faqs[0].answer, faqs[0].answer, faqs[0].answer, noticeLimit}, texts,
		"a burst of 3 is answered, the 4th message gets the notice, the rest nothing")
	a.say("dan", "地址")
	assert.Equal(t, faqs[1].answer, a.last("dan").Text)
}

// Quick messages are one turn: the burst's latest known question is answered once, a burst of
// small talk gets one menu, and a message after the window is a turn of its own.
func TestFAQBurstIsOneTurn(t *testing.T) {
	t.Parallel()
	a := newTestAppWith(t, settings{Every: time.Hour, Burst: 100, Gather: 300 * time.Millisecond})
	for _, text := range []string{"你好", "几点开门", "地址", "谢谢"} {
		a.wecom.AddText("eve", text)
	}
	a.deliver()
	sent := a.wecom.SentTo(a.wecom.OpenKfID(), "eve")
	require.Len(t, sent, 1, "one answer for the burst: %+v", sent)
	assert.Equal(t, faqs[1].answer, sent[0].Text, "the latest question it knows (地址)")
	assert.EqualValues(t, 1, a.ch.Stats().Bursts)

	a.wecom.AddText("eve", "hello")
	a.wecom.AddText("eve", "在吗")
	a.deliver()
	sent = a.wecom.SentTo(a.wecom.OpenKfID(), "eve")
	require.Len(t, sent, 2)
	assert.Equal(t, "msgmenu", sent[1].MsgType, "small talk gets the menu, once")

	a.say("eve", "退货")
	sent = a.wecom.SentTo(a.wecom.OpenKfID(), "eve")
	require.Len(t, sent, 3)
	assert.Equal(t, faqs[2].answer, sent[2].Text)
}

// A bad FAQ_BURST is named before anything listens.
func TestRunRejectsBadBurst(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"wechatcom_corp_id":"ww1",
		"wechatcom_kf_cursor_dir":"`+filepath.Join(dir, "state")+`","wechatcom_kf_secret":"s","wechatcom_kf_token":"t","wechatcom_kf_aes_key":"`+strings.Repeat("a", 43)+`"}`), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // should run get past the check, it stops at once
	t.Setenv("FAQ_BURST", "soon")
	assert.ErrorContains(t, run(ctx, dir, slog.New(slog.DiscardHandler)), `FAQ_BURST="soon"`)
	t.Setenv("FAQ_BURST", "2m")
	assert.ErrorContains(t, run(ctx, dir, slog.New(slog.DiscardHandler)), "WithBurstWindow")
}

// run fails with the missing key named, before listening.
func TestRunNamesMissingConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"wechatcom_corp_id":"ww1"}`), 0o600))
	err := run(context.Background(), dir, slog.New(slog.DiscardHandler))
	assert.ErrorContains(t, err, "wechatcom_kf_secret")
}
