// Package kftest is a behavioural fake of the WeCom Customer Service (微信客服) API for tests, like
// net/http/httptest and slack-go's slacktest: tokens, sync_msg cursors and paging, the 48 h / 5-message
// rule, session states, media limits, signed callbacks and fault injection, enforced as WeCom does.
//
//	srv := kftest.NewServer()
//	defer srv.Close()
//	client, _ := kf.NewClient(srv.CorpID(), srv.Secret(), kf.WithBaseURL(srv.URL())) // any client
//	srv.AddText("wmCustomer", "hello")                                              // a customer writes
//	_ = srv.Notify(ctx, botURL, srv.OpenKfID())                                     // WeCom calls the bot
//	sent, _ := srv.WaitSentTo(ctx, srv.OpenKfID(), "wmCustomer", 1)                 // what it answered
//
// Handle and FailWith replace any endpoint's answer for a test (e.g. gettoken answering 60020), and
// the call is still counted and observed.
//
// "§N" in comments refers to section N of docs/wecom-api.md in this repository, the project's
// statement of the WeCom facts it relies on; "doc NNNNN" is an official WeCom page. Where no official
// page gives WeCom's error code for a case, the fake's choice is marked "approximation" on the Code
// constants, and rules the fake models without an official page to confirm them (some msgmenu item
// checks, for example) say so where they are enforced; DuplicateMsgIDCode is unconfirmed.
// kftest speaks the wire format with its own types and does not import package kf: the client and
// the fake are two independent implementations that check each other.
package kftest
