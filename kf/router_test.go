package kf_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// say answers with a fixed text.
func say(text string) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error { return r.Text(ctx, text) }
}

// routed runs h on m with a Recorder and returns what it answered.
func routed(t *testing.T, h kf.Handler, m *kf.Message) []string {
	t.Helper()
	rec, err := kf.NewRecorder(m)
	require.NoError(t, err)
	require.NoError(t, h(context.Background(), m, rec))
	return rec.Texts()
}

func menuClick(id, content string) *kf.Message {
	m := customerText(content)
	m.Text.MenuID = id
	return m
}

func event(t kf.EventType) *kf.Message {
	return &kf.Message{MsgID: "ev", OpenKfID: "wk1", Origin: kf.OriginSystem, MsgType: kf.MsgTypeEvent,
		Body: kf.Body{Event: &kf.Event{EventType: t, ExternalUserID: "wm1"}}}
}

// Routes match in order: menu id, keyword, pattern, msgtype; events by type; then the default.
func TestRouterDispatch(t *testing.T) {
	t.Parallel()
	rt := kf.NewRouter()
	rt.OnMenu("price", say("menu:price"))
	rt.OnKeyword("价格", say("keyword:价格"))
	rt.OnKeyword(" 人工 ", say("keyword:人工"))
	rt.OnMatch(regexp.MustCompile(`^\d{6}$`), say("pattern:code"))
	rt.OnMatch(regexp.MustCompile(`价`), say("pattern:价"))
	rt.OnMsgType(kf.MsgTypeText, say("type:text"))
	rt.OnMsgType(kf.MsgTypeImage, say("type:image"))
	rt.OnEvent(kf.EventEnterSession, say("event:enter"))
	rt.Default(say("default"))

	img := &kf.Message{MsgID: "i", OpenKfID: "wk1", ExternalUserID: "wm1", Origin: kf.OriginCustomer, MsgType: kf.MsgTypeImage,
		Body: kf.Body{Image: &kf.Image{MediaID: "x"}}}
	servicer := customerText("价格")
	servicer.Origin = kf.OriginServicer
	for _, tc := range []struct {
		m    *kf.Message
		want string
	}{
		{menuClick("price", "随便"), "menu:price"},
		{menuClick("unknown", "价格"), "keyword:价格"},
		{customerText("  价格\n"), "keyword:价格"},
		{customerText("人工"), "keyword:人工"},
		{customerText("123456"), "pattern:code"},
		{customerText("什么价钱"), "pattern:价"},
		{customerText("hello"), "type:text"},
		{img, "type:image"},
		{event(kf.EventEnterSession), "event:enter"},
		{event(kf.EventMsgSendFail), "default"},
		{servicer, "default"},
	} {
		assert.Equal(t, []string{tc.want}, routed(t, rt.Handle, tc.m), "%+v", tc.m.Text)
	}

	empty := kf.NewRouter()
	assert.Empty(t, routed(t, empty.Handle, customerText("hi")), "no route, no default: done unanswered")
	empty.OnKeyword("hi", nil)
	empty.Default(say("default"))
	assert.Empty(t, routed(t, empty.Handle, customerText("hi")), "a nil handler answers nothing")
}

// Routers nest, and middleware wraps routes in order (Chain(h, a, b) is a(b(h))).
func TestRouterNestingAndMiddleware(t *testing.T) {
	t.Parallel()
	var order []string
	mark := func(name string) kf.Middleware {
		return func(next kf.Handler) kf.Handler {
			return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
				order = append(order, name)
				return next(ctx, m, r)
			}
		}
	}
	faq := kf.NewRouter()
	faq.OnKeyword("hours", say("9-18"))
	faq.Use(mark("inner"))
	rt := kf.NewRouter()
	rt.OnMatch(regexp.MustCompile(`^hours$`), faq.Handle)
	rt.Use(mark("outer1"), nil, mark("outer2"))
	h := kf.Chain(rt.Handle, mark("chain"))
	assert.Equal(t, []string{"9-18"}, routed(t, h, customerText("hours")))
	assert.Equal(t, []string{"chain", "outer1", "outer2", "inner"}, order)
}

// The menu builder's click items route back to their handlers; the 转人工 item hands the session
// over.
func TestMenuBuilder(t *testing.T) {
	t.Parallel()
	rt := kf.NewRouter()
	menu, err := rt.Menu("请选择：").
		Click("hours", "营业时间", say("9:00-18:00")).
		Item(kf.MenuView("https://example.com/help", "帮助中心")).
		Handoff("转人工", "", "").
		Build("（点击选项）")
	require.NoError(t, err)
	require.Len(t, menu.List, 3)
	assert.Equal(t, "hours", menu.List[0].Click.ID)
	assert.Equal(t, kf.MenuIDHandoff, menu.List[2].Click.ID)
	assert.Equal(t, "请选择：", menu.HeadContent)

	assert.Equal(t, []string{"9:00-18:00"}, routed(t, rt.Handle, menuClick("hours", "营业时间")))
	m := menuClick(kf.MenuIDHandoff, "转人工")
	rec, err := kf.NewRecorder(m)
	require.NoError(t, err)
	require.NoError(t, rt.Handle(context.Background(), m, rec))
	st, _ := rec.State()
	assert.Equal(t, kf.ServiceStateQueued, st)

	_, err = rt.Menu("").Click("a", "A", nil).Click("a", "again", nil).Build("")
	assert.ErrorIs(t, err, kf.ErrInvalidArgument, "duplicate id")
	_, err = rt.Menu("").Click("", "A", nil).Build("")
	assert.ErrorIs(t, err, kf.ErrInvalidArgument, "no id")
	b := rt.Menu("too many")
	for i := range kf.MaxMenuItems + 1 {
		b.Click(fmt.Sprint("x", i), "x", say("never"))
	}
	_, err = b.Build("")
	assert.ErrorIs(t, err, kf.ErrInvalidArgument)
	assert.Empty(t, routed(t, rt.Handle, menuClick("x1", "x")), "a menu that failed to build registered nothing")
}

// HandoffHandler falls back to the queue when the servicer cannot take the session, and a rerun of
// a handoff that went through counts as done.
func TestHandoffHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := customerText("转人工")
	rec, err := kf.NewRecorder(m)
	require.NoError(t, err)
	h := kf.HandoffHandler("zhangsan", "正在为您转接人工客服…")
	require.NoError(t, h(ctx, m, rec))
	st, sv := rec.State()
	assert.Equal(t, kf.ServiceStateServicer, st)
	assert.Equal(t, "zhangsan", sv)
	assert.Equal(t, []string{"正在为您转接人工客服…"}, rec.Texts())
	rec.Rerun()
	assert.ErrorIs(t, h(ctx, m, rec), kf.ErrHumanServicer, "a rerun: the notice is refused, a reply outcome (done)")
	assert.Equal(t, []string{"正在为您转接人工客服…"}, rec.Texts())

	queue := kf.HandoffHandler("", "")
	rec, err = kf.NewRecorder(m)
	require.NoError(t, err)
	require.NoError(t, queue(ctx, m, rec))
	rec.Rerun()
	assert.NoError(t, queue(ctx, m, rec), "WeCom refuses the repeated change (95016): already handed over")
	st, _ = rec.State()
	assert.Equal(t, kf.ServiceStateQueued, st)
}

// ExampleRouter routes keywords, menu clicks and image messages, with a default.
func ExampleRouter() {
	rt := kf.NewRouter()
	rt.OnKeyword("营业时间", say("每天 9:00-18:00"))
	rt.OnMsgType(kf.MsgTypeImage, say("收到图片"))
	menu, _ := rt.Menu("您好，请选择：").
		Click("hours", "营业时间", say("每天 9:00-18:00")).
		Handoff("转人工", "", "").
		Build("")
	rt.Default(func(ctx context.Context, m *kf.Message, r kf.Replier) error { return r.Menu(ctx, menu) })
	// ch.OnMessage(rt.Handle)

	for _, m := range []*kf.Message{customerText("营业时间"), menuClick("hours", "营业时间"), customerText("你好")} {
		rec, _ := kf.NewRecorder(m)
		_ = rt.Handle(context.Background(), m, rec)
		for _, sent := range rec.Messages() {
			if sent.Text != nil {
				fmt.Println(sent.Text.Content)
			} else {
				fmt.Println("menu:", sent.MsgMenu.HeadContent, len(sent.MsgMenu.List), "items")
			}
		}
	}
	// Output:
	// 每天 9:00-18:00
	// 每天 9:00-18:00
	// menu: 您好，请选择： 2 items
}
