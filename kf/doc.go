// Package kf is a Go SDK for WeCom Customer Service (企业微信 微信客服) bots. Channel is what a host
// service mounts: the callback http.Handler, a sync engine that pulls messages with durable
// cursors, and a dispatcher that calls your OnMessage hook with a Replier. Client is the typed API
// underneath: every server API (tokens, sync_msg, send_msg, session state, accounts, servicers,
// customers, statistics, knowledge base, media) with typed errors and classified retries.
//
//	ch, err := kf.NewChannel(kf.Config{CorpID: corpID, Secret: secret, Token: token, EncodingAESKey: aesKey})
//	if err != nil { ... }
//	ch.OnMessage(func(ctx context.Context, m *kf.Message, r kf.Replier) error {
//		if m.Text != nil {
//			return r.Text(ctx, "echo: "+m.Text.Content)
//		}
//		return nil
//	})
//	mux.Handle("/wxkf/", ch)
//	defer ch.Shutdown(context.Background())
//
// # Delivery
//
// A callback is verified, decrypted and answered with 200 at once; the account's sync loop then
// pulls sync_msg pages (the newest callback token, has_more paging) and hands customer messages
// (origin 3) to OnMessage, in order per customer and concurrently across customers. Events
// (origin 4) and human servicers' messages (origin 5) go to OnEvent, never to OnMessage. A
// message is marked done in the Dedup store when its hook returns, and the stored cursor only
// advances past pages whose messages are all done, so:
//
//   - nothing is lost: a crash replays from the stored cursor, skipping what is done;
//   - nothing is answered twice: every send carries a client msgid derived from the incoming
//     msgid and the send's index, so a replayed or retried send is rejected by WeCom as a
//     duplicate, and the Replier counts it as sent;
//   - retried callbacks cost nothing: repeats of a callback already covered by a pull are dropped,
//     and N concurrent callbacks cost at most one extra pull round;
//   - a store error is never read as "no cursor": the pull waits and retries.
//
// With skip-history on (the default) an account's first sync skips messages sent before the
// channel first started, but not the message whose callback triggered it.
//
// # WeCom's rules
//
// Replier keeps the 48 h / 5-message rule per customer (a reply that needs more is fitted into
// what is left and a *ReplyError says what was dropped; 95001 does not happen), splits text at
// 2048 bytes on UTF-8 and grapheme boundaries, fits images to a JPG/PNG ≤ 10 MB, splits AMR voice
// into ≤ 60 s pieces, and sends nothing while a human servicer has the session (ErrHumanServicer).
//
// # Scaling out
//
// Several replicas behind a load balancer share one Redis: pass cursor/redis's store with
// WithStores. Each account is then pulled by one replica at a time (a lease), and cursors, done
// msgids and the access token are shared. kf/kftest is a behavioural fake of the API for tests.
//
// # WeCom's documentation
//
// Comments cite WeCom's official pages as "doc NNNNN" (developer.work.weixin.qq.com/document/path/NNNNN)
// and the facts this package relies on as "§N": §N refers to section N of docs/wecom-api.md in this
// repository, which also marks what no official page confirms. Requests are checked before any I/O
// only against limits an official page states and for structure; other limits (such as the msgmenu
// item lengths some SDKs give) are left to WeCom, whose errcode and errmsg come back as *APIError
// (docs/wecom-api.md §6, "Limits enforced locally").
package kf
