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
//     not objects, are skipped and counted (Stats.Malformed); unknown msgtypes and event types
//     reach the handler with Raw and are counted (Stats.UnknownTypes); an answer over the response
//     cap is pulled again with a smaller limit.
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
// # Building a bot
//
// Optional pieces on top of OnMessage, each a Handler or a Middleware: Router dispatches by menu
// click, keyword, pattern, msgtype and event type, and builds msgmenu contents whose clicks route
// back to it (with a 转人工 item, HandoffHandler); Channel.Use wraps the hooks in Middleware such as
// Logging and LimitCustomers; Replier.Stream sends a language model's answer while it is generated,
// within the quota and the rerun rules; OnSessionEnd and EndSession send a closing message or a
// survey with the session's msg_code; Recorder tests a handler without a server.
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
// later, so that a lock WeCom still holds costs one call. It is logged at Warn and counted
// (Stats.RateLimited, Stats.RateLimitPauses; Stats.RateLimitWait is the time calls spent waiting). A call that cannot go before its context's deadline fails at once
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
// share each corp's budget, and a 45009 seen by one pauses the API on all of them (a busy replica
// fetches up to 16 calls ahead, valid 100 ms, so it may still send those after another replica's
// 45009; see NewRateLimiter). Give a Channel other ceilings or a limiter of its own with
// WithClientOptions(WithRateLimiter(l)). kf/kftest is a behavioural fake of the API for tests; its
// SetRateLimit enforces scaled-down limits.
//
// Under load the Redis work is batched: a holding with 8 or more messages in hand pulls at most
// every 50 ms (one page and one done-lookup for the callbacks that came meanwhile), the done marks
// that finish within 50 ms of a write go in the next one, reply records put during another's write
// share the next script, and cursor saves are coalesced. Two replicas then spend about 2–3 Redis
// commands per message under load, and about 31 for an isolated message, which takes and releases
// its own lease and marks and clears its callback's owed mark. An idle account costs no goroutine
// and no timer.
//
// # Callbacks owed across replicas
//
// On stores that implement cursor.Owed (cursor/redis), a replica marks the account owed in the
// store before it answers a callback (or a Trigger), and clears its mark once a pull round that
// started after it has completed. Every replica looks, every half lease TTL, for marks older than two
// lease TTLs and pulls those accounts (counted in Stats.OwedSwept). So a callback answered by a
// replica that then died, or shut down, before pulling is pulled by another replica within about
// two and a half lease TTLs (75 s by default), without waiting for a restart or the account's next
// callback. A mark that cannot be written (Redis down) is logged; the callback is still answered.
//
// # Telemetry
//
// The Channel and the Client record OpenTelemetry metrics and spans through the API only: pass
// providers with WithMeterProvider and WithTracerProvider (WithClientMeterProvider and
// WithClientTracerProvider for a Client of your own); without them the global providers are used,
// which record nothing until the application installs an SDK, and cost no allocation meanwhile.
// Metric attributes are bounded and carry no personal data: an account's open_kfid, a msgtype
// ("other" for one this package does not know), an outcome, WeCom's errcode, an API path; never an
// external_userid, a msgid or content. Durations are in seconds.
//
// What recording costs, measured on 2 shared cores: with no SDK installed, about 1.3 µs and no
// allocation per message; with the OpenTelemetry SDK installed (every metric aggregated, every span
// sampled and batched), about 20 µs and 8 KB in 32 allocations per message, most of them in the
// SDK's span handling. At 650 messages a second the median latency the SDK adds to a message rose
// from 1.3 to 1.4 ms and its 99th percentile from 4.3 to 5.6 ms (BenchmarkChannelLatency).
//
// Instruments (kind, unit; attributes):
//
//   - wxkf.callback.count (counter, {callback}; callback.result): callback requests, by result:
//     accepted, coalesced (a repeat that a pull already covers), verified (the GET URL check),
//     forged, stale (outside the replay window), malformed, too_large, shutting_down.
//   - wxkf.pull.count (counter, {pull}; open_kfid, outcome): sync_msg pages, ok or error (the
//     call failed, or the store lookup after it: the page is pulled again).
//   - wxkf.pull.duration (histogram, s; open_kfid, outcome): one page, sync_msg and the queueing
//     of its messages.
//   - wxkf.pull.messages (histogram, {message}; open_kfid): messages per page.
//   - wxkf.message.count (counter, {message}; open_kfid, msgtype, origin): messages received,
//     counted when first seen by the account's holder; origin 3 customer, 4 event, 5 servicer.
//   - wxkf.handler.duration (histogram, s; open_kfid, outcome): one run of the hooks for a
//     message, by outcome: ok; error (done with a Replier refusal, *ReplyError or
//     ErrReplySuperseded); retried; dead_lettered; panic; dropped (lease lost, stopping, no
//     OnMessage yet: left for later, not done).
//   - wxkf.send.count (counter, {message}; open_kfid, msgtype, outcome, errcode): replies and
//     welcomes sent, by outcome: accepted; duplicate (refused as a repeated client msgid: an
//     earlier run's send got through); refused (WeCom's errcode says why, e.g. 95001); failed
//     (no answer: network, HTTP, no token). errcode is 0 unless WeCom answered one.
//   - wxkf.send.duration (histogram, s; open_kfid, outcome): one send, the client's retries
//     included.
//   - wxkf.quota.drop.count (counter, {message}; open_kfid): reply messages not sent for the
//     5-message quota (a *ReplyError with ErrQuotaExceeded: its Dropped).
//   - wxkf.dedupe.hit.count (counter, {message}; open_kfid): pulled messages skipped as done or
//     in flight already.
//   - wxkf.retry.count (counter, {retry}; open_kfid): handler reruns scheduled.
//   - wxkf.dead_letter.count (counter, {message}; open_kfid): messages given up (OnDeadLetter).
//   - wxkf.message.in_flight (gauge, {message}): messages queued, running or waiting for a
//     retry.
//   - wxkf.message.queued (gauge, {message}): messages waiting for a worker, retries included.
//   - wxkf.message.queued_bytes (gauge, By): estimated memory of the messages in queues.
//   - wxkf.cursor.lag (gauge, s; open_kfid): now minus the send_time of the newest message
//     handled. It also grows while an account is quiet: read it with wxkf.message.in_flight.
//   - wxkf.lease.held (gauge, {lease}; open_kfid): 1 while this process holds the account's
//     lease, else 0.
//   - wxkf.lease.loss.count (counter, {loss}; open_kfid): leases lost while held.
//   - wxkf.token.refresh.count (counter, {refresh}; outcome): gettoken refreshes, ok or error
//     (Client).
//   - wxkf.api.call.count (counter, {call}; api.path, errcode or error.type): API calls, their
//     retries included (Client). errcode is WeCom's, 0 on success; when WeCom gave no answer,
//     error.type replaces it: token, network, timeout, canceled, an HTTP status code (http for
//     one outside 100–599), unexpected_response, response_too_large, or other.
//   - wxkf.api.call.duration (histogram, s; as wxkf.api.call.count): one API call (Client).
//   - wxkf.ratelimit.wait.duration (histogram, s; api.path): how long one attempt of an API call
//     waited for the rate limiter, the shared store's round trip included (Client).
//   - wxkf.ratelimit.pause.count (counter, {pause}; api.path): pauses of an API path for the whole
//     corp that a 45009 answer started (Client; see Rate limits).
//
// Attribute keys are namespaced: wxkf.open_kfid, wxkf.msgtype, wxkf.origin, wxkf.outcome,
// wxkf.errcode, wxkf.api.path, wxkf.callback.result and error.type. A Prometheus exporter turns
// the names into wxkf_callback_count_total, wxkf_handler_duration_seconds and so on.
//
// Spans: "wxkf.callback" (server) for each callback request, a child of the request's context;
// "wxkf.pull" for each sync_msg page (its queueing included); "wxkf.message" (consumer) for each
// handler run, linked to the pull that delivered the message, with wxkf.open_kfid, wxkf.msgid,
// wxkf.msgtype, wxkf.origin, wxkf.attempt and wxkf.outcome; and "METHOD /path" (client) for each
// API call, with its retries, errcode and HTTP status, a child of the span in its context. The
// context OnMessage and OnEvent get carries the message's span, so the application's own spans
// (a model call, a database) and the Replier's API calls nest under it. The customer's
// external_userid is added only with WithTraceCustomerIDs.
//
// A burst (WithBurstWindow) is answered in one handler run, and recorded as one: wxkf.message.count
// counts each of its messages, but wxkf.handler.duration and wxkf.retry.count count the run once,
// and the run has one "wxkf.message" span, with the first message's wxkf.msgid (the msgid its log
// lines and reply record go by) and wxkf.burst.size, the number of messages, linked to the pull
// that delivered each message: one link per message, oldest first, carrying that message's
// wxkf.msgid.
//
// # Health
//
// Channel.Health reports whether the store answers and an access token can be had, the last pull
// of each account and its lease, the queues and the dead letters. LivenessHandler and
// ReadinessHandler serve it to probes:
//
//	mux.Handle("GET /healthz", ch.LivenessHandler()) // 200 while the Channel runs
//	mux.Handle("GET /readyz", ch.ReadinessHandler()) // 503 while the store or the token fails
//
// # Logs
//
// The Channel and Client log through WithChannelLogger (WithLogger) with the same keys
// everywhere: open_kfid, msgid, msgtype, errcode, path, duration, attempt and err; never a
// token, a secret or message content. A line about a message names it by open_kfid and msgid
// (for a burst, its first message's), the Client's lines for calls made with a handler's
// context included. Levels: Info for lifecycle (start, shutdown, a reply a WeCom rule stopped),
// Warn for a failure that is retried or worked around, Error for a loss (a dead letter, a welcome
// that could not be sent, a suppressed reply).
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
