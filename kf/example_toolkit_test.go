package kf_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/wxkf/wxkf/kf"
)

// Middleware wraps every handler call: here a log line per turn and a per-customer rate limit of
// one message every 10 s (bursts of 2), which answers the first message over it and then stays
// quiet.
func ExampleChannel_Use() {
	bot := newExampleBot()
	defer bot.close()
	limit, err := kf.LimitCustomers(rate.Every(10*time.Second), 2, kf.WithLimitNotice("您发得太快了，请稍等。"))
	if err != nil {
		log.Fatal(err)
	}
	bot.ch.Use(kf.Logging(slog.New(slog.DiscardHandler)), limit)
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		return r.Text(ctx, "收到："+m.Text.Content)
	})
	for _, text := range []string{"一", "二", "三", "四"} {
		bot.wecom.AddText("wmAlice", text)
	}
	bot.customerWrites("wmAlice", "五")
	for _, r := range bot.waitReplies("wmAlice", 3) {
		fmt.Println(r)
	}
	// Output:
	// 收到：一
	// 收到：二
	// 您发得太快了，请稍等。
}

// A servicer ends the session in the WeCom client: the Channel sends the satisfaction survey with
// the event's msg_code, and the customer's click comes back to the router.
func ExampleChannel_OnSessionEnd() {
	bot := newExampleBot()
	defer bot.close()
	rt := kf.NewRouter()
	survey, err := rt.Menu("本次服务您满意吗？").
		Click("csat_good", "满意", func(ctx context.Context, m *kf.Message, r kf.Replier) error {
			return r.Text(ctx, "感谢您的评价！")
		}).
		Click("csat_bad", "不满意", func(ctx context.Context, m *kf.Message, r kf.Replier) error {
			return r.Text(ctx, "抱歉，我们会改进。")
		}).
		Build("")
	if err != nil {
		log.Fatal(err)
	}
	bot.ch.OnSessionEnd(func(ctx context.Context, e *kf.SessionEnd) (kf.Content, error) { return survey, nil })
	bot.ch.OnMessage(rt.Handle)

	bot.wecom.AddText("wmBob", "我要投诉")
	bot.wecom.SetServiceState(bot.wecom.OpenKfID(), "wmBob", 3, "zhangsan") // a human took it
	bot.wecom.EndSessionByServicer(bot.wecom.OpenKfID(), "wmBob")           // and ended it
	if err := bot.wecom.Notify(context.Background(), bot.srv.URL, bot.wecom.OpenKfID()); err != nil {
		log.Fatal(err)
	}
	bot.waitReplies("wmBob", 1)
	sent := bot.wecom.SentTo(bot.wecom.OpenKfID(), "wmBob")
	fmt.Println(sent[0].MsgType, "sent on the event:", sent[0].OnEvent)

	bot.wecom.AddMenuClick("wmBob", "csat_good", "满意")
	if err := bot.wecom.Notify(context.Background(), bot.srv.URL, bot.wecom.OpenKfID()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(bot.waitReplies("wmBob", 2)[1])
	// Output:
	// msgmenu sent on the event: true
	// 感谢您的评价！
}

// With a burst window, a customer's messages that come within it of each other reach the handler
// as one turn: m is the latest, m.Burst all of them in order. The reply goes once, after the last.
func ExampleWithBurstWindow() {
	bot := newExampleBot(kf.WithBurstWindow(300 * time.Millisecond))
	defer bot.close()
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		var texts []string
		for _, x := range m.Burst {
			if x.Text != nil {
				texts = append(texts, x.Text.Content)
			}
		}
		return r.Text(ctx, fmt.Sprintf("%d 条消息：%s", len(m.Burst), strings.Join(texts, " / ")))
	})
	bot.wecom.AddText("wmAlice", "你好")
	bot.wecom.AddText("wmAlice", "我想问一下")
	bot.customerWrites("wmAlice", "订单什么时候到？")
	for _, r := range bot.waitReplies("wmAlice", 1) {
		fmt.Println(r)
	}
	// Output:
	// 3 条消息：你好 / 我想问一下 / 订单什么时候到？
}

// The bot ends a session a human servicer has (for example when the servicer's shift is over): the
// closing message of OnSessionEnd goes with the msg_code WeCom returns. A session the bot itself
// has cannot be ended this way: WeCom answers 95016.
func ExampleChannel_EndSession() {
	bot := newExampleBot()
	defer bot.close()
	bot.ch.OnSessionEnd(func(ctx context.Context, e *kf.SessionEnd) (kf.Content, error) {
		return kf.NewText("会话已结束，感谢您的咨询。"), nil
	})
	kfid := bot.wecom.OpenKfID()
	bot.wecom.AddText("wmCarol", "你好")
	bot.wecom.SetServiceState(kfid, "wmCarol", 3, "zhangsan") // with a human servicer
	if err := bot.ch.EndSession(context.Background(), kfid, "wmCarol"); err != nil {
		log.Fatal(err)
	}
	sent := bot.wecom.SentTo(kfid, "wmCarol")
	fmt.Println(sent[0].Text, "(on the event:", sent[0].OnEvent, ")")

	bot.wecom.AddText("wmDave", "你好") // the bot has this one
	err := bot.ch.EndSession(context.Background(), kfid, "wmDave")
	fmt.Println(errors.Is(err, kf.ErrInvalidStateTransition))
	// Output:
	// 会话已结束，感谢您的咨询。 (on the event: true )
	// true
}
