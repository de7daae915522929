// Command faq is a customer-service bot for frequently asked questions, built from wxkf's toolkit:
// a kf.Router answers keywords (营业时间, 地址, 退货, …) and an order-number pattern, offers the
// questions as a menu whose clicks route back to the same answers, and hands the customer to a
// human on "转人工"; when the human servicer ends the session, the Channel sends a satisfaction
// survey with the session's msg_code (OnSessionEnd), and the customer's rating comes back to the
// router. Middleware logs each turn and limits how fast one customer can make the bot answer.
//
// A customer who types "你好", "请问", "几点开门" in quick succession gets one answer, not three:
// the Channel merges messages sent within FAQ_BURST of each other into one turn
// (kf.WithBurstWindow), and the bot answers the burst's latest question it knows.
//
//	WECHATCOM_CORP_ID=ww… WECHATCOM_KF_SECRET=… WECHATCOM_KF_TOKEN=… WECHATCOM_KF_AES_KEY=… \
//	FAQ_SERVICER=zhangsan FAQ_BURST=1.5s go run ./examples/faq
//
// FAQ_SERVICER is the WeCom userid of a servicer of the account (empty: the queue). FAQ_BURST is
// the burst window, a Go duration (default 1.5s; 0 answers every message). The other settings are
// examples/echo's: config.json in the working directory, environment overriding it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/wxkf/wxkf/config"
	"github.com/wxkf/wxkf/kf"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, ".", log); err != nil {
		fmt.Fprintln(os.Stderr, "faq:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, log *slog.Logger) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	s := settings{Servicer: os.Getenv("FAQ_SERVICER"), Every: 3 * time.Second, Burst: 3, Gather: 1500 * time.Millisecond}
	if v := os.Getenv("FAQ_BURST"); v != "" {
		if s.Gather, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("FAQ_BURST=%q: want a duration such as 1.5s or 0", v)
		}
	}
	opts, closeStores, err := cfg.ChannelOptions()
	if err != nil {
		return err
	}
	defer closeStores()
	h, ch, err := newApp(cfg.KF(), s, log, opts...)
	if err != nil {
		return err
	}
	return serveUntil(ctx, cfg.Addr(), h, ch, log)
}

// faq is one question the bot answers: the click id of its menu item, its keywords (the first is
// the menu label) and the answer.
type faq struct {
	id       string
	keywords []string
	answer   string
}

var faqs = []faq{
	{"faq_hours", []string{"营业时间", "几点开门", "几点关门"}, "我们每天 9:00-21:00 营业，节假日照常。"},
	{"faq_address", []string{"门店地址", "地址", "在哪里"}, "门店地址：上海市黄浦区南京东路 100 号（地铁 2 号线南京东路站 3 号口）。"},
	{"faq_return", []string{"退货", "退换货", "怎么退货"}, "收货后 7 天内可无理由退货：在订单页点“申请售后”，按提示寄回即可，运费由我们承担。"},
	{"faq_shipping", []string{"发货", "多久发货", "快递"}, "下单后 24 小时内发货，默认顺丰，一般 1-3 天送达。"},
}

// Texts the bot sends.
const (
	noticeHandoff = "正在为您转接人工客服…"
	noticeLimit   = "您发送得太快了，请稍等片刻再问。"
	thanks        = "感谢您的评价，我们会继续努力！"
)

// orderNumber is how the customer's order numbers look.
var orderNumber = regexp.MustCompile(`^\s*\d{12,20}\s*$`)

// settings are the bot's own options.
type settings struct {
	Servicer string        // userid 转人工 hands to; "" = the queue
	Every    time.Duration // a customer may make the bot answer once every Every…
	Burst    int           // …after a burst of Burst messages
	Gather   time.Duration // messages sent within Gather of each other are one turn (0: off)
}

// newApp creates the Channel, installs the bot on it and mounts it at /wxkf/.
func newApp(cfg kf.Config, s settings, log *slog.Logger, opts ...kf.ChannelOption) (http.Handler, *kf.Channel, error) {
	ch, err := kf.NewChannel(cfg, append(opts, kf.WithChannelLogger(log), kf.WithBurstWindow(s.Gather))...)
	if err != nil {
		return nil, nil, err
	}
	rt, survey, err := newRouter(s.Servicer, log)
	if err != nil {
		return nil, nil, err
	}
	limit, err := kf.LimitCustomers(rate.Every(s.Every), s.Burst, kf.WithLimitNotice(noticeLimit))
	if err != nil {
		return nil, nil, err
	}
	ch.Use(kf.Logging(log), limit, latestQuestion)
	ch.OnSessionEnd(func(ctx context.Context, e *kf.SessionEnd) (kf.Content, error) {
		log.Info("session ended: sending the survey", "customer", e.ExternalUserID, "servicer", e.ServicerUserID)
		return survey, nil
	})
	ch.OnMessage(rt.Handle)
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	mux.Handle("/wxkf", ch)
	return mux, ch, nil
}

// newRouter builds the bot: the FAQ routes, the FAQ menu (also the answer to anything else), the
// handoff, and the survey menu whose ratings route back here.
func newRouter(servicer string, log *slog.Logger) (rt *kf.Router, survey *kf.Menu, err error) {
	rt = kf.NewRouter()
	menu := rt.Menu("您好，请问想了解什么？点击下面的问题：")
	for _, f := range faqs {
		answer := text(f.answer)
		for _, k := range f.keywords {
			rt.OnKeyword(k, answer)
		}
		menu.Click(f.id, f.keywords[0], answer)
	}
	faqMenu, err := menu.Handoff("转人工", servicer, noticeHandoff).Build("也可以直接输入问题或订单号。")
	if err != nil {
		return nil, nil, err
	}
	handoff := kf.HandoffHandler(servicer, noticeHandoff)
	rt.OnKeyword("人工", handoff)
	rt.OnKeyword("转人工", handoff)
	rt.OnMatch(orderNumber, func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		return r.Text(ctx, "订单 "+m.Text.Content+" 已发货，预计明天送达。（示例数据）")
	})
	rt.Default(func(ctx context.Context, m *kf.Message, r kf.Replier) error { return r.Menu(ctx, faqMenu) })

	rate := func(score string) kf.Handler {
		return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
			log.Info("satisfaction", "customer", m.ExternalUserID, "score", score)
			return r.Text(ctx, thanks)
		}
	}
	survey, err = rt.Menu("本次服务已结束，您对服务满意吗？").
		Click("csat_3", "满意", rate("good")).
		Click("csat_2", "一般", rate("fair")).
		Click("csat_1", "不满意", rate("poor")).
		Build("")
	if err != nil {
		return nil, nil, err
	}
	rt.Use(quiet)
	return rt, survey, nil
}

// latestQuestion turns a burst (kf.WithBurstWindow) into the question to answer: its latest
// message the bot knows an answer to (a FAQ keyword, an order number, a menu click), or, when none
// is, the burst's last message, which gets the menu. "你好" + "几点开门" + "谢谢" is answered
// with the opening hours, once.
func latestQuestion(next kf.Handler) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		for i := len(m.Burst) - 1; i >= 0; i-- {
			if q := m.Burst[i]; knows(q) {
				pick := *q
				pick.Burst = m.Burst
				return next(ctx, &pick, r)
			}
		}
		return next(ctx, m, r)
	}
}

// knows reports whether the bot has an answer for m beyond the menu.
func knows(m *kf.Message) bool {
	if m.Text == nil {
		return false
	}
	if m.Text.MenuID != "" || orderNumber.MatchString(m.Text.Content) {
		return true
	}
	c := strings.TrimSpace(m.Text.Content)
	if c == "人工" || c == "转人工" {
		return true
	}
	for _, f := range faqs {
		if slices.Contains(f.keywords, c) {
			return true
		}
	}
	return false
}

// text answers with a fixed text.
func text(s string) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error { return r.Text(ctx, s) }
}

// quiet turns the Replier's refusal to send while a human servicer has the session, or it waits in
// the queue, into silence: the human answers.
func quiet(next kf.Handler) kf.Handler {
	return func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		err := next(ctx, m, r)
		if errors.Is(err, kf.ErrHumanServicer) || errors.Is(err, kf.ErrSessionQueued) {
			return nil
		}
		return err
	}
}

// serveUntil serves h on addr until ctx ends (SIGTERM), then stops within 25 s: the Channel first
// (callbacks get 503 and WeCom retries them later; every message already pulled is finished, the
// cursors saved), then the HTTP server.
func serveUntil(ctx context.Context, addr string, h http.Handler, ch *kf.Channel, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	log.Info("listening", "addr", addr, "callback", "/wxkf/")
	select {
	case err := <-failed:
		_ = ch.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("stopping: finishing pulled messages")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err := ch.Shutdown(sctx)
	_ = srv.Shutdown(sctx)
	return err
}
