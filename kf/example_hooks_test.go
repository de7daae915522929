package kf_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// exampleBot is a Channel mounted on a test server, with kftest as WeCom.
type exampleBot struct {
	wecom *kftest.Server
	ch    *kf.Channel
	srv   *httptest.Server
	dir   string
}

func newExampleBot(opts ...kf.ChannelOption) *exampleBot {
	wecom := kftest.NewServer() // in production: the real WeCom, and no WithClientOptions
	dir, err := os.MkdirTemp("", "wxkf-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := kf.Config{CorpID: wecom.CorpID(), Secret: wecom.Secret(), Token: wecom.CallbackToken(), EncodingAESKey: wecom.EncodingAESKey()}
	ch, err := kf.NewChannel(cfg, append([]kf.ChannelOption{kf.WithStateDir(dir), kf.WithClientOptions(kf.WithBaseURL(wecom.URL()))}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return &exampleBot{wecom: wecom, ch: ch, srv: httptest.NewServer(ch), dir: dir}
}

// customerWrites adds a customer message and delivers its callback, as WeCom would.
func (b *exampleBot) customerWrites(user, text string) {
	b.wecom.AddText(user, text)
	if err := b.wecom.Notify(context.Background(), b.srv.URL, b.wecom.OpenKfID()); err != nil {
		log.Fatal(err)
	}
}

// waitReplies waits until user got n replies and returns their texts.
func (b *exampleBot) waitReplies(user string, n int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := b.wecom.WaitSentTo(ctx, b.wecom.OpenKfID(), user, n)
	if err != nil {
		log.Fatal(err)
	}
	var out []string
	for _, s := range sent {
		out = append(out, s.Text)
	}
	return out
}

func (b *exampleBot) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.srv.Close()
	_ = b.ch.Shutdown(ctx)
	b.wecom.Close()
	os.RemoveAll(b.dir)
}

// A Replier call that WeCom's rules cut short returns a *ReplyError saying why and what was not
// sent; the handler can return it (the message then counts as answered) or react to it.
func ExampleReplyError() {
	bot := newExampleBot()
	defer bot.close()
	done := make(chan struct{})
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		defer close(done)
		long := strings.Repeat("A long answer. ", 1000) // 15 000 bytes: more than 5 messages hold
		err := r.Text(ctx, long)
		var re *kf.ReplyError
		if errors.As(err, &re) && errors.Is(err, kf.ErrQuotaExceeded) {
			fmt.Printf("sent %d messages, %d bytes did not fit\n", re.Sent, re.DroppedBytes)
		}
		return err
	})
	bot.customerWrites("ann", "tell me everything")
	<-done
	// Output: sent 5 messages, 4801 bytes did not fit
}

// Handoff moves the session to a human servicer (转人工); the bot stays quiet until it comes back.
func ExampleReplier_Handoff() {
	bot := newExampleBot()
	defer bot.close()
	bot.wecom.AddServicer("agent-1", kftest.ServicerReceiving)
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		if m.Text.Content == "人工" {
			if err := r.Text(ctx, "正在为您转接人工客服……"); err != nil {
				return err
			}
			return r.Handoff(ctx, "agent-1")
		}
		return r.Text(ctx, "echo: "+m.Text.Content)
	})
	bot.customerWrites("bob", "人工")
	fmt.Println(bot.waitReplies("bob", 1)[0])
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if state, _ := bot.wecom.ServiceState(bot.wecom.OpenKfID(), "bob"); state == kftest.StateServicer {
			break
		}
	}
	state, servicer := bot.wecom.ServiceState(bot.wecom.OpenKfID(), "bob")
	fmt.Println("state", state, "servicer", servicer)
	// Output:
	// 正在为您转接人工客服……
	// state 3 servicer agent-1
}

// OnEvent sees system events (origin 4) and human servicers' messages (origin 5); they never reach
// OnMessage.
func ExampleChannel_OnEvent() {
	bot := newExampleBot()
	defer bot.close()
	seen := make(chan string, 1)
	bot.ch.OnEvent(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		seen <- m.Origin.String() + ": " + m.Text.Content
		return nil
	})
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error { return nil })
	bot.wecom.AddServicer("agent-1", kftest.ServicerReceiving)
	bot.wecom.AddServicerText("carl", "agent-1", "您好，我是客服小王")
	if err := bot.wecom.Notify(context.Background(), bot.srv.URL, bot.wecom.OpenKfID()); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-seen)
	// Output: servicer: 您好，我是客服小王
}

// OnDeadLetter sees a message the Channel gives up on: here the handler's backend keeps failing
// past the retry horizon (shortened for the example). The message is marked done after the hook.
func ExampleChannel_OnDeadLetter() {
	bot := newExampleBot(kf.WithRetryHorizon(300*time.Millisecond), kf.WithRetryBackoff(50*time.Millisecond, 100*time.Millisecond))
	defer bot.close()
	dead := make(chan string, 1)
	bot.ch.OnDeadLetter(func(ctx context.Context, m *kf.Message, err error) {
		dead <- fmt.Sprintf("gave up on %q: %v", m.Text.Content, err)
	})
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		return kf.Retry(errors.New("the model is unreachable"))
	})
	bot.customerWrites("dora", "hello?")
	fmt.Println(<-dead)
	// Output: gave up on "hello?": kf: retry requested: the model is unreachable
}

// Several replicas share one Redis: each account is pulled by one replica at a time, and cursors,
// done msgids, reply records and the access token are shared. The example uses the Redis at
// $WXKF_EXAMPLE_REDIS_ADDR (default 127.0.0.1:6379); go test starts a redis-server for it.
func ExampleWithStores() {
	addr := os.Getenv("WXKF_EXAMPLE_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	bot := newExampleBot(kf.WithStores(redis.New(rdb, redis.WithPrefix("wxkf-example:"+time.Now().Format("150405.000")+":"))))
	defer bot.close()
	bot.ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		return r.Text(ctx, "from one of the replicas: "+m.Text.Content)
	})
	bot.customerWrites("eve", "hi")
	fmt.Println(bot.waitReplies("eve", 1)[0])
	// Output: from one of the replicas: hi
}
