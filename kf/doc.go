// Package kf is a Go SDK for WeCom Customer Service (企业微信 微信客服): a typed client for every
// server API (tokens, sync_msg, send_msg, session state, accounts, servicers, customers, statistics,
// knowledge base, media) with typed errors, classified retries and a typed message model.
//
//	client, err := kf.NewClient(corpID, secret)
//	if err != nil { ... }
//	page, err := client.SyncMsg(ctx, kf.SyncMsgRequest{OpenKfID: openKfID, Token: callbackToken})
//	for _, m := range page.Messages {
//		if m.Origin == kf.OriginCustomer && m.Text != nil {
//			_, err = client.SendMsg(ctx, kf.SendMsgRequest{ToUser: m.ExternalUserID, OpenKfID: m.OpenKfID, Content: kf.NewText("echo: " + m.Text.Content)})
//		}
//	}
package kf
