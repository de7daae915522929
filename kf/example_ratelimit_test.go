package kf_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// A rate limiter keeps the client under WeCom's frequency limits (doc 90454) and pauses an API after
// a 45009. Here the fake WeCom answers 45009 once: the next send, whose deadline comes before the
// pause ends, fails at once with ErrThrottled, without reaching WeCom. With replicas, give the
// limiter cursor/redis's Store (kf.WithRateStore) so that they share the budget and the pause.
func ExampleNewRateLimiter() {
	wecom := kftest.NewServer()
	defer wecom.Close()
	wecom.AddText("wmCustomer", "hello")

	limits, err := kf.NewRateLimiter(
		kf.WithRateCeilings("/cgi-bin/kf/send_msg", kf.RateCeiling{Calls: 600, Per: time.Minute}),
		kf.WithRatePause(time.Minute, time.Hour, 10*time.Minute),
	)
	if err != nil {
		panic(err)
	}
	client, err := kf.NewClient(wecom.CorpID(), wecom.Secret(), kf.WithBaseURL(wecom.URL()), kf.WithRateLimiter(limits))
	if err != nil {
		panic(err)
	}
	send := func(ctx context.Context, id string) error {
		_, err := client.SendMsg(ctx, kf.SendMsgRequest{ToUser: "wmCustomer", OpenKfID: wecom.OpenKfID(), MsgID: id, Content: kf.NewText("hi")})
		return err
	}
	wecom.FailWith("/cgi-bin/kf/send_msg", 45009, "api freq out of limit")
	fmt.Println(errors.Is(send(context.Background(), "m1"), kf.ErrRateLimited))
	wecom.Handle("/cgi-bin/kf/send_msg", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(errors.Is(send(ctx, "m2"), kf.ErrThrottled), len(wecom.Sent()))
	// Output:
	// true
	// true 0
}
