package kf

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Stats is a snapshot of a Channel's counters since it started.
type Stats struct {
	Callbacks         int64 // callbacks accepted (200)
	Coalesced         int64 // callbacks that needed no pull: a retry already covered by one
	CallbacksRejected int64 // callbacks refused: bad signature, malformed, wrong method, too large, outside the replay window
	Pulls             int64 // sync_msg pages pulled
	Messages          int64 // messages received in those pages (a message pulled again by a rewind counts once)
	Malformed         int64 // items skipped because they have no usable msgid (missing, not a string, over 1024 bytes) or are not objects
	UnknownTypes      int64 // messages of a msgtype or event type this version does not decode, passed to the hooks with Raw
	Dispatched        int64 // messages handed to hooks (a retry is not a new dispatch)
	Handled           int64 // messages whose hooks finished and that were marked done (dead letters included)
	DedupeHits        int64 // messages skipped because they were already done or in flight
	HistorySkipped    int64 // messages skipped as history (skip-history)
	Replies           int64 // sends WeCom accepted
	DuplicateSends    int64 // sends WeCom refused as already sent (a replay or retry was absorbed)
	RepliesSuperseded int64 // Replier calls not sent because an earlier run of the handler answered differently
	HandlerErrors     int64 // hook calls that returned an error, timed out or panicked
	Retries           int64 // handler reruns scheduled after a transient failure
	DeadLetters       int64 // messages given up after the retry horizon (or a permanent failure): see OnDeadLetter
	WelcomeExpired    int64 // welcome codes that were too old to use
	Deferred          int64 // messages pulled but not queued at once (memory budget); each is queued later, in order
	Rewinds           int64 // pulls of earlier pages to queue deferred messages
	Bursts            int64 // handler calls that answered a burst of several messages (WithBurstWindow)
	PageShrinks       int64 // sync_msg answers over the response cap, pulled again with a smaller limit
	EmptyPages        int64 // has_more answers with an unchanged cursor and no messages (backed off)
	LeaseLosses       int64 // account leases lost while held (the holding's queue was dropped)
	LeasesHeld        int64 // account leases held now
	OwedSwept         int64 // accounts pulled because a callback another replica answered was left unpulled (cursor.Owed stores)
	// RateLimited counts the client's 45009 answers (WeCom's frequency limit, doc 90454);
	// RateLimitPauses the pauses of an API path they started (see NewRateLimiter);
	// RateLimitWait is the time API calls spent in the rate limiter (a shared store's round
	// trips included).
	RateLimited     int64
	RateLimitPauses int64
	RateLimitWait   time.Duration
	// ErrorsByCode counts API errors by WeCom errcode; local failures (stores, network) are
	// under 0.
	ErrorsByCode map[int]int64
	QueueDepth   int   // messages waiting for a worker (waiting for a retry included)
	InFlight     int   // messages queued, running or waiting for a retry
	QueuedBytes  int64 // estimated bytes of the messages held in queues (bounded by WithQueueBytes)
	QueuedPeak   int64 // the highest QueuedBytes seen
}

type stats struct {
	callbacks, rejected, pulls, messages, malformed, dispatched, handled atomic.Int64
	dedupeHits, history, replies, duplicateSends, superseded             atomic.Int64
	handlerErrors, retries, deadLetters, welcomeExpired, coalesced       atomic.Int64
	deferred, rewinds, pageShrinks, emptyPages, leaseLosses, leaseHeld   atomic.Int64
	bursts, owedSwept, unknownTypes                                      atomic.Int64
	inflight                                                             atomic.Int64

	mu     sync.Mutex
	errors map[int]int64
	// unknownSeen holds the unknown msgtypes and event types already logged (at most
	// maxUnknownLogged of them).
	unknownSeen map[string]bool
}

// maxUnknownLogged bounds the unknown types logged by name; later ones are counted only.
const maxUnknownLogged = 64

// Stats returns the Channel's counters.
func (ch *Channel) Stats() Stats {
	st := &ch.stats
	s := Stats{
		Callbacks: st.callbacks.Load(), Coalesced: st.coalesced.Load(), CallbacksRejected: st.rejected.Load(),
		Pulls: st.pulls.Load(), Messages: st.messages.Load(), Malformed: st.malformed.Load(),
		UnknownTypes: st.unknownTypes.Load(),
		Dispatched:   st.dispatched.Load(), Handled: st.handled.Load(),
		DedupeHits: st.dedupeHits.Load(), HistorySkipped: st.history.Load(),
		Replies: st.replies.Load(), DuplicateSends: st.duplicateSends.Load(), RepliesSuperseded: st.superseded.Load(),
		HandlerErrors: st.handlerErrors.Load(), Retries: st.retries.Load(), DeadLetters: st.deadLetters.Load(),
		WelcomeExpired: st.welcomeExpired.Load(),
		Deferred:       st.deferred.Load(), Rewinds: st.rewinds.Load(), Bursts: st.bursts.Load(), PageShrinks: st.pageShrinks.Load(),
		EmptyPages: st.emptyPages.Load(), LeaseLosses: st.leaseLosses.Load(), LeasesHeld: st.leaseHeld.Load(),
		OwedSwept:  st.owedSwept.Load(),
		QueueDepth: ch.disp.queued(), InFlight: int(st.inflight.Load()),
	}
	s.QueuedBytes, s.QueuedPeak = ch.disp.usage()
	s.RateLimited, s.RateLimitPauses, s.RateLimitWait = ch.client.rateCounts()
	st.mu.Lock()
	s.ErrorsByCode = make(map[int]int64, len(st.errors))
	for k, v := range st.errors {
		s.ErrorsByCode[k] = v
	}
	st.mu.Unlock()
	return s
}

func (ch *Channel) noteCode(err error) {
	code := ErrorCode(err)
	ch.stats.mu.Lock()
	ch.stats.errors[code]++
	ch.stats.mu.Unlock()
}

// noteErr logs and counts an error of a background operation (retried: Warn). An API error adds
// its errcode and path.
func (ch *Channel) noteErr(op string, err error, attrs ...any) {
	ch.noteCode(err)
	ch.log.Warn("wxkf: "+op+" failed", errAttrs(attrs, err)...)
}

// errAttrs appends err to a log call's attributes: its errcode and path if it is an API error,
// then err itself.
func errAttrs(attrs []any, err error) []any {
	var ae *APIError
	if errors.As(err, &ae) {
		attrs = append(attrs, "errcode", ae.Code, "path", ae.Path)
	}
	return append(attrs, "err", err)
}

// noteUnknownType counts a message of a msgtype or event type this version does not decode (it
// reaches the hooks with Raw), and logs each such type once.
func (ch *Channel) noteUnknownType(openKfID string, m *Message) {
	ch.stats.unknownTypes.Add(1)
	name := string(m.MsgType)
	if m.MsgType == MsgTypeEvent && m.Event != nil {
		name += "/" + string(m.Event.EventType)
	}
	ch.stats.mu.Lock()
	first := !ch.stats.unknownSeen[name] && len(ch.stats.unknownSeen) < maxUnknownLogged
	if first {
		if ch.stats.unknownSeen == nil {
			ch.stats.unknownSeen = map[string]bool{}
		}
		ch.stats.unknownSeen[name] = true
	}
	ch.stats.mu.Unlock()
	if first {
		ch.log.Info("wxkf: a message type this version does not decode reaches the hooks with Raw",
			"open_kfid", openKfID, "msgtype", name)
	}
}

// noteMalformed counts and logs an item the engine cannot track: no msgid, a msgid that is not a
// string or is too long, or an item that is not an object. It is logged once, when its page is
// first pulled; its content is never logged.
func (ch *Channel) noteMalformed(openKfID string, m *Message) {
	ch.stats.malformed.Add(1)
	reason := "no msgid"
	switch {
	case m.MsgID != "" && !utf8.ValidString(m.MsgID):
		reason = "msgid is not valid UTF-8"
	case m.MsgID != "":
		reason = "msgid of " + strconv.Itoa(len(m.MsgID)) + " bytes is too long"
	case m.MsgType == "" && len(m.Raw) > 0:
		reason = "not a message object"
	}
	ch.log.Warn("wxkf: skipped a malformed sync_msg item", "open_kfid", openKfID, "reason", reason,
		"msgtype", string(m.MsgType), "origin", int(m.Origin))
}
