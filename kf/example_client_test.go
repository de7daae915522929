package kf_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// A client pulls the messages of a kf account and answers a customer. Against WeCom, drop
// WithBaseURL and use the corpid and the secret of the app that owns the kf accounts.
func ExampleNewClient() {
	wecom := kftest.NewServer() // a fake WeCom for this example
	defer wecom.Close()
	wecom.AddText("wmCustomer", "hello")

	client, err := kf.NewClient(wecom.CorpID(), wecom.Secret(), kf.WithBaseURL(wecom.URL()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	page, err := client.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: wecom.OpenKfID()})
	if err != nil {
		panic(err)
	}
	for _, m := range page.Messages {
		if m.Origin != kf.OriginCustomer || m.Text == nil {
			continue
		}
		fmt.Println("customer says:", m.Text.Content)
		_, err := client.SendMsg(ctx, kf.SendMsgRequest{
			ToUser:   m.ExternalUserID,
			OpenKfID: m.OpenKfID,
			MsgID:    "reply-1", // a client msgid makes the send safe to retry
			Content:  kf.NewText("echo: " + m.Text.Content),
		})
		switch {
		case errors.Is(err, kf.ErrQuotaExceeded):
			fmt.Println("5 messages already sent since the customer's last message")
		case err != nil:
			panic(err)
		}
	}
	fmt.Println("sent:", wecom.Sent()[0].Text)
	// Output:
	// customer says: hello
	// sent: echo: hello
}

// Errors are typed: switch on WeCom's errcode with errors.Is, never on errmsg.
func ExampleAPIError() {
	err := fmt.Errorf("replying: %w", &kf.APIError{Code: 95018, Msg: "state not allowed", Path: "/cgi-bin/kf/send_msg"})
	fmt.Println(errors.Is(err, kf.ErrStateForbidsSend), kf.ErrorCode(err))
	en, zh := kf.CodeDescription(kf.ErrorCode(err))
	fmt.Println(en, "/", zh)
	// Output:
	// true 95018
	// session state does not allow sending, or the session is older than 48 h / 当前会话状态不允许发送消息或会话已超过48小时
}
