package kftest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/wxkf/wxkf/kf/kftest"
)

// A customer writes; a bot (here: plain net/http) pulls the message with sync_msg and answers with
// send_msg; the test then inspects what was sent. With package kf, point its client at srv.URL().
func ExampleNewServer() {
	srv := kftest.NewServer()
	defer srv.Close()
	hc := srv.HTTPServer().Client()
	call := func(method, path string, q url.Values, body string, out any) {
		req, _ := http.NewRequest(method, srv.URL()+path+"?"+q.Encode(), strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(out)
	}

	srv.AddText("wmCustomer", "你好")

	var tok struct {
		AccessToken string `json:"access_token"`
	}
	call("GET", "/cgi-bin/gettoken", url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}, "", &tok)
	auth := url.Values{"access_token": {tok.AccessToken}}

	var page struct {
		HasMore int `json:"has_more"`
		MsgList []struct {
			ExternalUserID string `json:"external_userid"`
			Text           struct {
				Content string `json:"content"`
			} `json:"text"`
		} `json:"msg_list"`
	}
	call("POST", "/cgi-bin/kf/sync_msg", auth, `{"open_kfid":"`+srv.OpenKfID()+`"}`, &page)
	m := page.MsgList[0]
	fmt.Println("customer said:", m.Text.Content, "has_more:", page.HasMore)

	var sent struct {
		Errcode int    `json:"errcode"`
		MsgID   string `json:"msgid"`
	}
	call("POST", "/cgi-bin/kf/send_msg", auth, `{"touser":"`+m.ExternalUserID+`","open_kfid":"`+srv.OpenKfID()+
		`","msgid":"reply-1","msgtype":"text","text":{"content":"echo: `+m.Text.Content+`"}}`, &sent)
	fmt.Println("send_msg errcode:", sent.Errcode, "msgid:", sent.MsgID)

	for _, s := range srv.SentTo(srv.OpenKfID(), "wmCustomer") {
		fmt.Println("bot sent:", s.Text)
	}
	fmt.Println("quota left:", srv.QuotaLeft(srv.OpenKfID(), "wmCustomer"))
	// Output:
	// customer said: 你好 has_more: 0
	// send_msg errcode: 0 msgid: reply-1
	// bot sent: echo: 你好
	// quota left: 4
}

// A test makes one endpoint fail as WeCom would, e.g. an IP not on the trusted list (60020), and then
// restores the modelled endpoint.
func ExampleServer_FailWith() {
	srv := kftest.NewServer()
	defer srv.Close()
	srv.FailWith("/cgi-bin/gettoken", 60020, "not allow to access from your ip, from ip: 203.0.113.7")

	get := func() (r struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}) {
		q := url.Values{"corpid": {srv.CorpID()}, "corpsecret": {srv.Secret()}}
		resp, err := srv.HTTPServer().Client().Get(srv.URL() + "/cgi-bin/gettoken?" + q.Encode())
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r
	}
	fmt.Println(get().Errcode, get().Errmsg)
	srv.Handle("/cgi-bin/gettoken", nil)
	fmt.Println(get().Errcode, srv.Calls("/cgi-bin/gettoken"))
	// Output:
	// 60020 not allow to access from your ip, from ip: 203.0.113.7
	// 0 3
}
