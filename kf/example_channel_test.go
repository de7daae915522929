package kf_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/wxkf/wxkf/kf"
	"github.com/wxkf/wxkf/kf/kftest"
)

// A bot mounted on a mux, driven here by kftest as WeCom: a customer writes, WeCom calls back,
// the Channel pulls the message and OnMessage answers.
func ExampleNewChannel() {
	wecom := kftest.NewServer() // in production: the real WeCom, and no WithClientOptions
	defer wecom.Close()
	dir, _ := os.MkdirTemp("", "wxkf-example")
	defer os.RemoveAll(dir)

	ch, err := kf.NewChannel(kf.Config{
		CorpID:         wecom.CorpID(),
		Secret:         wecom.Secret(),
		Token:          wecom.CallbackToken(),
		EncodingAESKey: wecom.EncodingAESKey(),
	}, kf.WithStateDir(dir), kf.WithClientOptions(kf.WithBaseURL(wecom.URL())))
	if err != nil {
		log.Fatal(err)
	}
	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
		if m.Text != nil {
			return r.Text(ctx, "you said: "+m.Text.Content)
		}
		return r.Text(ctx, "thanks for the "+string(m.MsgType))
	})

	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	wecom.AddText("customer-1", "hello")
	if err := wecom.Notify(context.Background(), srv.URL+"/wxkf/", wecom.OpenKfID()); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := wecom.WaitSentTo(ctx, wecom.OpenKfID(), "customer-1", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sent[0].Text)
	if err := ch.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: you said: hello
}
