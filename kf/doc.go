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
// (origin 4) and human servicers' messages (origin 5) go to OnEvent, never to OnMessage.
//
// What holds, under crashes, restarts, outages of WeCom or of the handler's own backends, and
// replicas that pause past their lease:
//
//   - Nothing is lost. A message is marked done only when its hook returned (its replies sent, or
//     refused for a WeCom rule) or when it went to the dead-letter hook. The stored cursor only
//     advances past pages whose messages are all done, so a crash replays from the oldest
//     unfinished message; every account with stored state is pulled again at start-up, so a
//     callback answered before a crash is never stranded.
//   - Transient failures are retried, in order. WeCom busy or over a limit (-1, 45009, 45033),
//     network errors (WeCom's or the handler's own), handler timeouts and Retry/RetryAfter run the
//     handler again with capped, jittered backoff for up to WithRetryHorizon (15 min by default,
//     counted from the first attempt in the current process). The customer's later messages wait
//     behind it; other customers do not. Past the horizon, and at once for a permanent failure or
//     a panic, the message goes to OnDeadLetter, and only then is it marked done.
//   - No reply is accepted twice, and no customer gets parts of two answers. Each Replier call is
//     recorded with the messages it will send (their client msgids and bodies) before the first
//     send; a rerun of the handler (a retry, a replay after a crash, a failover) completes the
//     recorded reply instead of sending its own, and gets ErrReplySuperseded for calls beyond it
//     once it answers differently. A send counts as already accepted only on evidence: the record
//     says so, or WeCom refuses the repeated msgid naming it as a duplicate.
//   - Only the lease holder acts. A replica checks its lease (by its own clock, so a paused process
//     notices at once when it resumes) before each handler and each send, drops its queue when the
//     lease is lost, and writes cursors, done marks and reply records only through the lease, which
//     the store refuses atomically once another replica may hold it. What a stale replica can still
//     do: a send it had in flight when it paused reaches WeCom (a duplicate of it is refused), and
//     a handler it was running goes on until its context, cancelled when the loss is noticed,
//     stops it; side effects of the handler outside the Replier are not fenced.
//   - A bad item or a big page never stops an account. Items without a usable msgid, or that are
//     not objects, are skipped and counted (Stats.Malformed); unknown msgtypes reach the handler
//     with Raw; an answer over the response cap is pulled again with a smaller limit.
//   - One customer's flood does not hold up the others, and memory stays bounded: the messages
//     waiting in queues hold at most WithQueueBytes (a quarter of it per customer); beyond that a
//     message is not kept but pulled again, in order, when there is room.
//   - Retried callbacks cost nothing: repeats of a callback already covered by a pull are dropped,
//     and N concurrent callbacks cost at most one extra pull round; an older callback never
//     replaces a newer sync token, and one outside the replay window is refused.
//   - A store error is never read as "no cursor": the pull waits and retries.
//
// With skip-history on (the default) an account's first sync skips messages sent before the
// channel first started, but not the message whose callback triggered it.
//
// # WeCom's rules
//
// Replier keeps the 48 h / 5-message rule per customer (a reply that needs more is fitted into
// what is left and a *ReplyError says what was dropped; a send whose order against the customer's
// newest message cannot be told, as send_time has a one-second resolution, counts against the
// newer window, so 95001 does not happen while the account stays with one process; after a restart
// or a failover the new holder does not know its predecessor's sends in the current window, and a
// refusal is reported as ErrQuotaExceeded), splits text at 2048 bytes on UTF-8 and grapheme
// boundaries, fits images to a JPG/PNG ≤ 10 MB, splits AMR voice into ≤ 60 s pieces, and sends
// nothing while a human servicer has the session (ErrHumanServicer). A cached session state is
// trusted only for messages older than what it was learned from: a newer customer message gets a
// fresh look (service_state/get), and a 95018 is told apart from "48 h passed" the same way.
//
// # Rate limits
//
// WeCom allows each corp 10,000 calls a minute and 150,000 an hour per API, and each IP 20,000 a
// minute per API (doc 90454); a call over a limit is answered 45009 and WeCom then refuses that API
// for the corp for a while (reported: a minute up to an hour). Every Client waits on a RateLimiter
// before each HTTP attempt. The default, NewRateLimiter(), keeps each corp and API path 5 % under
// those ceilings (WithRateMargin: calls flow at 95 %, and a burst after a quiet spell adds at most
// 2.5 %) with the generic cell rate algorithm (GCRA), in the process. A 45009 pauses that API for
// the corp: 1 minute, doubled by each consecutive 45009 up to an hour, starting over once 10
// minutes passed without one (WithRatePause); after it one call goes first and the others a second
// later, so that a lock WeCom still holds costs one call. It is logged at Warn and counted (Stats.RateLimited, Stats.RateLimitPauses; Stats.RateLimitWait is
// the time calls spent waiting). A call that cannot go before its context's deadline fails at once
// with ErrThrottled, which the Channel retries like any transient failure.
//
// When the budget is short, calls go by Priority, per corp and API path: replies to fresh messages
// first, then the calls of a handler the Channel runs again (PriorityRetry), then sync_msg pulls
// without a callback token (PriorityBackground). PriorityContext marks an application's own calls.
//
// # Scaling out
//
// Several replicas behind a load balancer share one Redis: pass cursor/redis's store with
// WithStores. Each account is then pulled by one replica at a time (a lease), and cursors, done
// msgids, reply records and the access token are shared. So is the rate limiter: a Channel whose
// Stores implement RateStore (cursor/redis does, one Lua script per admission on a key hash-tagged
// by corp, on the Redis server's clock) uses NewRateLimiter(WithRateStore(stores)), so the replicas
// share each corp's budget, and a 45009 seen by one pauses the API on all of them. Give a Channel
// other ceilings or a limiter of its own with WithClientOptions(WithRateLimiter(l)). kf/kftest is a
// behavioural fake of the API for tests; its SetRateLimit enforces scaled-down limits.
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
