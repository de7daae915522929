package kf

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/wxkf/wxkf/cursor"
)

// metaHistoryBefore names the account metadata that keeps the skip-history boundary until the
// first cursor is saved, so that a restart in between uses the same boundary (a new one would
// skip messages the first run had pulled but not finished).
const metaHistoryBefore = "history_before"

// Sync limits.
const (
	// syncLimit is sync_msg's page size: the maximum, 1000 (§4).
	syncLimit = 1000
	// minSyncLimit is the floor of the page size when answers are too large for the client's
	// response cap: each too-large answer halves the limit down to this.
	minSyncLimit = 1
	// maxAhead bounds the msgids a session remembers between the oldest unfinished message and the
	// newest pulled one: past it the session stops pulling until handlers catch up. It is checked
	// before each page, so the page that reaches it may take the session up to syncLimit-1 past it.
	maxAhead = 50_000
	// syncTokenMaxAge is how long a callback token is used: valid 10 minutes (§1), with a margin.
	syncTokenMaxAge = 9 * time.Minute
)

// account is the sync state of one open_kfid in this process. It costs no goroutine while idle:
// a trigger (callback, start-up, poll) starts its loop, which ends when there is no work left.
type account struct {
	ch *Channel
	id string

	mu      sync.Mutex
	token   string    // the newest callback token (valid 10 minutes, §1)
	tokenAt time.Time // its callback's CreateTime: an older callback never replaces it
	pending bool      // a trigger arrived that no complete pull round has covered yet
	active  bool      // run() is alive
	owed    *owedMark // this process's mark in a shared store that a pull is owed (owed.go)
	marking bool      // a mark is being made
	wake    chan struct{}

	// Retries of one callback carry the same token. rounds counts pull rounds started; seen maps
	// a token to the value of rounds when it was first seen: once a round has started since, a
	// repeat of that token is already covered and costs nothing.
	rounds uint64
	seen   map[string]uint64
	order  []string // seen's keys, oldest first (bounded)

	obs accountObs // what telemetry and Health read
}

// maxSeenTokens bounds the tokens remembered for coalescing (one per recent callback).
const maxSeenTokens = 256

// trigger records a callback (or a start-up or poll pull, with no token) for openKfID and starts
// its loop if it is not running. Triggers coalesce: however many arrive during a pull, they cost
// one more pull round. at is the callback's CreateTime (zero for triggers without a token).
func (ch *Channel) trigger(openKfID, token string, at time.Time) bool {
	ok, _ := ch.triggerRound(openKfID, token, at)
	return ok
}

// triggerRound is trigger, also reporting whether the trigger was a repeat that a pull round
// already covers (coalesced).
func (ch *Channel) triggerRound(openKfID, token string, at time.Time) (ok, coalesced bool) {
	ch.accMu.Lock()
	defer ch.accMu.Unlock()
	if ch.stopping.Load() {
		return false, false // Shutdown waits for the loops: none may start after it began
	}
	a := ch.accountLocked(openKfID)
	a.mu.Lock()
	if token != "" {
		if first, ok := a.seen[token]; ok && a.rounds > first {
			a.mu.Unlock()
			ch.stats.coalesced.Add(1)
			return true, true // a retry of a callback whose messages a pull that started later has covered
		}
		a.remember(token)
		if a.token == "" || !at.Before(a.tokenAt) {
			a.token, a.tokenAt = token, at
		}
	}
	a.pending = true
	start := !a.active
	a.active = true
	a.mu.Unlock()
	if start {
		ch.accWG.Add(1)
		go a.run()
		return true, false
	}
	a.poke()
	return true, false
}

func (a *account) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *account) remember(token string) {
	if _, ok := a.seen[token]; ok {
		return
	}
	if a.seen == nil {
		a.seen = make(map[string]uint64)
	}
	if len(a.order) >= maxSeenTokens {
		delete(a.seen, a.order[0])
		a.order = a.order[1:]
	}
	a.seen[token] = a.rounds
	a.order = append(a.order, token)
}

// takePending clears and reports the pending flag, with the token to pull with.
func (a *account) takePending() (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.pending {
		return false, ""
	}
	a.pending = false
	a.rounds++
	tok := a.token
	if tok != "" && a.ch.now().Sub(a.tokenAt) > syncTokenMaxAge {
		tok = ""
	}
	return true, tok
}

// setPending marks a pull round as still owed: it was interrupted (an error, shutdown, a lost
// lease) or stopped early, and nothing may count it as done.
func (a *account) setPending() {
	a.mu.Lock()
	a.pending = true
	a.mu.Unlock()
}

func (a *account) isPending() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending
}

// currentToken returns the callback token while it is fresh enough to use, without taking a round.
func (a *account) currentToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == "" || a.ch.now().Sub(a.tokenAt) > syncTokenMaxAge {
		return ""
	}
	return a.token
}

func (a *account) dropToken(tok string) {
	a.mu.Lock()
	if a.token == tok {
		a.token = ""
	}
	a.mu.Unlock()
}

// run holds the account's lease while there is work: pulls, in-flight handlers, cursor commits.
// A lost lease ends the holding; the loop then waits for the lease again and pulls from the saved
// cursor, since whatever the lost holding had not finished is owed.
func (a *account) run() {
	ch := a.ch
	defer ch.accWG.Done()
	select {
	case <-ch.ready: // nothing is pulled before OnMessage
	case <-ch.pullCtx.Done():
	}
	bo := ch.newBackoff()
	for {
		if ch.pullCtx.Err() != nil {
			a.mu.Lock()
			a.active = false
			a.mu.Unlock()
			return
		}
		lease, err := ch.stores.Lock(ch.pullCtx, a.id, ch.cfg.leaseTTL)
		if err != nil {
			if ch.pullCtx.Err() == nil {
				ch.noteErr("lock", err, "open_kfid", a.id)
				bo.wait(ch.pullCtx)
			}
			continue
		}
		bo.reset()
		ch.stats.leaseHeld.Add(1)
		a.obs.held.Store(true)
		s := newSession(a, lease)
		s.run()
		a.obs.held.Store(false)
		ch.stats.leaseHeld.Add(-1)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ch.workCtx), 5*time.Second)
		if err := lease.Release(rctx); err != nil && !errors.Is(err, cursor.ErrLeaseLost) {
			ch.log.Warn("wxkf: lease release failed (it expires on its own)", "open_kfid", a.id, "err", err)
		}
		cancel()
		a.mu.Lock()
		if !a.pending || ch.pullCtx.Err() != nil {
			a.active = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
	}
}

// session is one holding of an account's lease: it pulls pages, queues their messages, and
// commits the cursor behind them. Its context ends when the lease is lost or on a hard stop: the
// handlers it started are cancelled and its queued messages are dropped, never marked done.
type session struct {
	a     *account
	ch    *Channel
	lease cursor.Lease
	ctx   context.Context
	stop  context.CancelFunc
	tr    *tracker
	bo    *backoff

	loaded     bool
	pullCursor string    // where the next sync_msg starts: the newest next_cursor pulled
	saved      string    // the cursor last saved (by load, then only by the committer)
	boundary   time.Time // skip messages sent before this (zero: skip nothing)
	limit      int       // the sync_msg limit in use
	lastPull   time.Time // when the last pull round started (the session loop's)
	roundStart time.Time // when the pull round under way started; zero for a rewind pass

	pullSpan trace.SpanContext // the span of the page being queued: its messages' spans link to it

	over atomic.Bool // the holding ended: lease lost or hard stop (see valid)

	mu        sync.Mutex
	active    int             // jobs queued, running or waiting for a retry
	deferring map[string]int  // customer key → messages of theirs deferred
	blocked   map[string]bool // customers whose later messages must not run (an earlier one was abandoned)
	rewindReq bool            // a rewind should run
	rewinding bool            // a rewind pass is running
	stuck     map[string]bool // during a rewind pass: customers whose deferred messages stay deferred
	frontier  string          // the forward pull position saved by a rewind
	signal    chan struct{}   // a job finished, or a rewind was requested

	commitReq  chan struct{}
	stopCommit chan struct{}

	lastPulled map[string]time.Time // customer key → when their latest message was pulled (bursts)

	marks    []*item          // finished messages waiting for their done mark (guarded by mu)
	unmarked map[string]*item // customer key → their latest message whose mark is not written yet (mu)
	markSig  chan struct{}    // wakes the marker
	markNow  chan struct{}    // tells the marker not to linger: a customer's next message waits
}

func newSession(a *account, lease cursor.Lease) *session {
	ctx, stop := context.WithCancel(a.ch.workCtx)
	return &session{
		a: a, ch: a.ch, lease: lease, ctx: ctx, stop: stop,
		tr: newTracker(), bo: a.ch.newBackoff(), limit: syncLimit,
		deferring: make(map[string]int), blocked: make(map[string]bool),
		signal: make(chan struct{}, 1), markSig: make(chan struct{}, 1), markNow: make(chan struct{}, 1),
		unmarked: make(map[string]*item), lastPulled: make(map[string]time.Time),
	}
}

// valid reports whether the session may still act: its lease is held (by the holder's clock as
// well as the renewer's verdict) and no hard stop happened. Once false it stays false: a lease
// seen lost may look held again later (a renewal that was stuck in a paused Redis goes through),
// but another replica may have taken the account in between, so this holding is over.
func (s *session) valid() bool {
	if s.over.Load() {
		return false
	}
	if s.lease.Err() != nil || s.ctx.Err() != nil {
		s.over.Store(true)
		return false
	}
	return true
}

// lost ends the holding: a fenced write was refused, so another replica may hold the account.
func (s *session) lost() {
	s.over.Store(true)
	s.poke()
}

func (s *session) poke() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *session) run() {
	ch := s.ch
	s.commitReq = make(chan struct{}, 1)
	s.stopCommit = make(chan struct{})
	committed := make(chan struct{})
	go s.committer(committed)
	stopMark, marked := make(chan struct{}), make(chan struct{})
	go s.marker(stopMark, marked)
	lostLease := false
	for {
		if !s.valid() {
			lostLease = ch.workCtx.Err() == nil
			break
		}
		if ch.pullCtx.Err() == nil && s.pullOnce() {
			continue
		}
		s.requestCommit()
		if s.finished() {
			break
		}
		stopPull := ch.pullCtx.Done()
		if ch.pullCtx.Err() != nil {
			stopPull = nil // already closed: only finishing work matters now
		}
		select {
		case <-s.a.wake:
		case <-s.signal:
		case <-s.tr.progress:
		case <-s.lease.Done():
		case <-s.ctx.Done():
		case <-stopPull:
		}
	}
	if lostLease {
		ch.stats.leaseLosses.Add(1)
		ch.noteLeaseLoss(s.a.id)
		ch.log.Warn("wxkf: lease lost; dropping this holding's queue (the next holder pulls it again)",
			"open_kfid", s.a.id, "lease", s.lease.Token())
		s.a.setPending()
	}
	// Cancel the handlers of a lost holding and drop its queue, then wait for its jobs: the next
	// holding must not start while one of them still runs.
	if !s.valid() {
		s.stop()
	}
	s.waitIdle() // every job ended, every done mark written or abandoned
	close(stopMark)
	<-marked
	close(s.stopCommit)
	<-committed // the final save, unless the lease was lost or work was abandoned
	s.stop()
}

// pullOnce runs one step of pulling, if one is due: a rewind, or a pull round for a trigger. It
// reports whether it did anything.
func (s *session) pullOnce() bool {
	ch := s.ch
	s.mu.Lock()
	rewind := s.rewindReq && !s.rewinding
	s.rewindReq = false
	s.mu.Unlock()
	if rewind {
		if start, ok := s.tr.rewindStart(); ok {
			s.mu.Lock()
			s.rewinding = true
			s.stuck = make(map[string]bool)
			s.frontier = s.pullCursor
			s.mu.Unlock()
			s.pullCursor = start
			ch.stats.rewinds.Add(1)
			if !s.pull(s.a.currentToken()) {
				s.endRewind(true)
				s.bo.wait(s.ctx)
			}
			return true
		}
	}
	if _, _, known := s.tr.counts(); known >= s.ch.cfg.maxAhead {
		return false // far enough ahead: wait for handlers to finish older messages
	}
	s.linger()
	ok, tok := s.a.takePending()
	if !ok {
		return false
	}
	s.lastPull = time.Now()
	s.roundStart = s.lastPull
	defer func() { s.roundStart = time.Time{} }()
	if !s.pull(tok) {
		s.a.setPending() // not covered: pull again after the backoff
		s.bo.wait(ch.pullCtx)
	}
	return true
}

// pullLinger is the least time between two pulls of a busy holding (pullLingerBusy messages or
// more queued or running) on stores shared through a server (cursor/redis): the callbacks that come
// meanwhile are served by one pull, one page and one done-lookup, which spares the server about
// two commands a message under load. A holding with less work pulls at once, so an answer's
// latency is not affected until messages queue anyway. On the file stores, where a lookup costs no
// round trip, pulls do not linger.
const (
	pullLinger     = 50 * time.Millisecond
	pullLingerBusy = 8
)

// linger waits, when a pull is due for a busy holding, until the Channel's pullLinger after the
// last pull.
func (s *session) linger() {
	if s.ch.pullLinger == 0 || !s.a.isPending() {
		return
	}
	s.mu.Lock()
	busy := s.active >= pullLingerBusy
	s.mu.Unlock()
	wait := s.ch.pullLinger - time.Since(s.lastPull)
	if !busy || wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	case <-s.lease.Done():
	case <-s.ch.pullCtx.Done():
	}
}

// endRewind ends a rewind pass. When it stopped before the end, the forward position it saved is
// restored (the pass may have moved it on by pulling new pages).
func (s *session) endRewind(aborted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rewinding {
		return
	}
	s.rewinding = false
	s.stuck = nil
	if aborted {
		s.pullCursor = s.frontier
	}
}

// finished reports whether the holding has nothing left to do.
func (s *session) finished() bool {
	ch := s.ch
	stopping := ch.pullCtx.Err() != nil
	if !stopping && s.a.isPending() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active > 0 || s.rewindReq && !stopping {
		return false
	}
	if _, deferred, _ := s.tr.counts(); deferred > 0 && !stopping {
		s.rewindReq = true // nothing queued any more: pick the deferred messages up
		return false
	}
	return true
}

// waitIdle waits until no job of this session is queued, running or parked.
func (s *session) waitIdle() {
	for {
		s.mu.Lock()
		n := s.active
		s.mu.Unlock()
		if n == 0 {
			return
		}
		<-s.signal
	}
}

func (s *session) requestCommit() {
	select {
	case s.commitReq <- struct{}{}:
	default:
	}
}

// committer saves the newest cursor whose pages are all done, off the pull loop so a slow store
// (fsync, a Redis round trip) never delays pulling. Saves go through the lease, so a holder that
// lost it cannot overwrite its successor's cursor. Save errors are retried with backoff; the
// cursor only trails, so a late save loses nothing.
func (s *session) committer(done chan<- struct{}) {
	ch := s.ch
	defer close(done)
	bo := ch.newBackoff()
	for {
		final := false
		select {
		case <-s.commitReq:
		case <-s.stopCommit:
			final = true
		}
		for {
			cur, ok := s.tr.committable()
			if !ok || cur == s.saved || !s.valid() {
				break
			}
			if err := s.lease.Save(s.ctx, cur); err != nil {
				if errors.Is(err, cursor.ErrLeaseLost) || errors.Is(err, cursor.ErrReleased) {
					s.lost()
					break
				}
				ch.noteErr("cursor save", err, "open_kfid", s.a.id)
				if !bo.wait(s.ctx) {
					return
				}
				continue
			}
			s.saved = cur
			bo.reset()
		}
		if final {
			return
		}
	}
}

// load reads the stored cursor (and the skip-history boundary). A store error is an error: it is
// retried with backoff, never read as "no cursor".
func (s *session) load() bool {
	ch := s.ch
	ctx := s.ctx
	cur, err := ch.stores.Load(ctx, s.a.id)
	if err != nil {
		ch.noteErr("cursor load", err, "open_kfid", s.a.id)
		return false
	}
	s.pullCursor, s.saved = cur, cur
	if cur == "" {
		// The boundary is stored even when skip-history is off: it also registers the account
		// (State.Accounts), so that a first pull cut short is resumed at the next start.
		b, err := ch.stores.LoadMeta(ctx, s.a.id, metaHistoryBefore)
		if err != nil {
			ch.noteErr("cursor load", err, "open_kfid", s.a.id)
			return false
		}
		sec, perr := strconv.ParseInt(b, 10, 64)
		if b == "" || perr != nil {
			sec = ch.start.Unix()
			if err := s.lease.SetMeta(ctx, metaHistoryBefore, strconv.FormatInt(sec, 10)); err != nil {
				if errors.Is(err, cursor.ErrLeaseLost) {
					s.lost()
				} else {
					ch.noteErr("cursor save", err, "open_kfid", s.a.id)
				}
				return false
			}
		}
		if ch.cfg.skipHistory {
			s.boundary = time.Unix(sec, 0)
		}
	}
	s.loaded = true
	return true
}

// pull runs sync_msg from pullCursor until has_more is 0, dispatching each page. It reports false
// when it stopped on an error (the caller backs off and pulls again). A pull cut short by
// shutdown or a lost lease reports true but leaves the round pending.
func (s *session) pull(token string) bool {
	ch := s.ch
	if !s.loaded && !s.load() {
		return false
	}
	for {
		if !s.valid() || ch.pullCtx.Err() != nil {
			s.a.setPending() // interrupted: the round is still owed
			return true
		}
		req := SyncMsgRequest{Cursor: s.pullCursor, Token: token, Limit: s.limit, OpenKfID: s.a.id}
		pctx, pspan, pstart := s.startPull(req)
		resp, err := ch.client.SyncMsg(pctx, req)
		if err != nil {
			s.endPull(pctx, pspan, pstart, nil, err, false)
			switch {
			case token != "" && errors.Is(err, ErrInvalidMsgToken):
				s.a.dropToken(token) // expired or bad: pull without it (rate-limited, but works)
				token = ""
				continue
			case errors.Is(err, ErrResponseTooLarge) && s.limit > minSyncLimit:
				s.limit = max(s.limit/2, minSyncLimit)
				ch.stats.pageShrinks.Add(1)
				ch.log.Warn("wxkf: sync_msg answer over the response cap; pulling smaller pages",
					"open_kfid", s.a.id, "limit", s.limit)
				continue
			}
			if ch.pullCtx.Err() == nil {
				ch.noteErr("sync_msg", err, "open_kfid", s.a.id)
			}
			return false
		}
		ch.stats.pulls.Add(1)
		dispatched := s.dispatchPage(req.Cursor, resp)
		s.endPull(pctx, pspan, pstart, resp, nil, dispatched)
		if !dispatched {
			return false
		}
		unchanged := resp.NextCursor == "" || resp.NextCursor == s.pullCursor
		if resp.NextCursor != "" {
			s.pullCursor = resp.NextCursor
		}
		if !resp.HasMore {
			s.bo.reset()
			s.endRewind(false)
			if !s.roundStart.IsZero() {
				s.a.covered(s.ctx, s.roundStart) // a complete round: what was owed before it is pulled
			}
			return true
		}
		if unchanged && len(resp.Messages) == 0 {
			// has_more with an unchanged cursor and nothing in the page: WeCom is not ready with
			// the next page. Back off instead of spinning on the same request.
			ch.stats.emptyPages.Add(1)
			if !s.bo.wait(ch.pullCtx) {
				s.a.setPending()
				return true
			}
			continue
		}
		s.bo.reset()
		if _, _, known := s.tr.counts(); known >= s.ch.cfg.maxAhead {
			s.a.setPending() // resume paging once handlers catch up
			s.endRewind(true)
			return true
		}
		if s.rewindAborted() {
			s.endRewind(true)
			return true
		}
	}
}

// rewindAborted reports whether a running rewind pass should stop: every customer with deferred
// messages is stuck again (over budget), so pulling further back pages would queue nothing.
func (s *session) rewindAborted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rewinding {
		return false
	}
	for k := range s.deferring {
		if !s.stuck[k] {
			return false
		}
	}
	return len(s.deferring) > 0
}

// validMsgID reports whether id can be tracked and stored: a non-empty string of valid UTF-8 of at
// most cursor.MaxMsgIDLen bytes. Items without one are skipped (they cannot be deduplicated).
func validMsgID(id string) bool {
	return id != "" && len(id) <= cursor.MaxMsgIDLen && utf8.ValidString(id)
}

// dispatchPage looks a page's messages up in the store (done? an interrupted reply?) and hands
// each to the dispatcher, or defers it when its customer is over the memory budget. start is the
// cursor the page was pulled with. It reports false on a store error (the page is pulled again).
func (s *session) dispatchPage(start string, resp *SyncMsgResponse) bool {
	ch := s.ch
	msgs := resp.Messages
	ids := make([]string, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		if !validMsgID(m.MsgID) {
			continue
		}
		ids = append(ids, m.MsgID)
	}
	var st []cursor.Status
	if len(ids) > 0 {
		var err error
		st, err = ch.stores.Lookup(s.ctx, s.a.id, ids...)
		if err != nil || len(st) != len(ids) {
			if err == nil {
				err = errors.New("lookup answered a wrong number of results")
			}
			if s.ctx.Err() == nil {
				ch.noteErr("dedup", err, "open_kfid", s.a.id)
			}
			return false
		}
	}
	// Every customer message of the page restarts its customer's quota before any handler runs:
	// WeCom counts a reply to the first of a burst against the last.
	for i := range msgs {
		m := &msgs[i]
		if m.OpenKfID == "" {
			m.OpenKfID = s.a.id // events carry open_kfid only inside the event body (§5)
		}
		if m.ExternalUserID == "" && m.Event != nil {
			m.ExternalUserID = m.Event.ExternalUserID
		}
		if m.Origin == OriginCustomer && validMsgID(m.MsgID) {
			ch.quota.observe(m)
		}
	}

	s.mu.Lock()
	rewinding := s.rewinding
	s.mu.Unlock()
	var p *page
	if !rewinding || s.holdsNew(msgs, st) {
		p = s.tr.addPage(start, resp.NextCursor)
		if rewinding {
			s.mu.Lock()
			s.frontier = resp.NextCursor // this page is new: the forward position moves with it
			s.mu.Unlock()
		}
	}
	j := 0
	for i := range msgs {
		m := &msgs[i]
		if !validMsgID(m.MsgID) {
			if p != nil {
				ch.noteMalformed(s.a.id, m)
			}
			continue
		}
		status := st[j]
		j++
		if state, known := s.tr.state(m.MsgID); known {
			if state == msgDeferred && rewinding {
				s.readmit(m, status)
			} else if p != nil {
				ch.stats.dedupeHits.Add(1) // in flight or done already in this holding
				ch.noteDedupe(s.a.id)
			}
			continue
		}
		if p == nil {
			continue // an old page seen again during a rewind
		}
		ch.stats.messages.Add(1)
		ch.noteMessage(s.a.id, m)
		if m.needsRepair() {
			ch.noteUnknownType(s.a.id, m)
		}
		if status.Done {
			ch.stats.dedupeHits.Add(1)
			ch.noteDedupe(s.a.id)
			s.tr.settled(p, m.MsgID)
			continue
		}
		if !s.boundary.IsZero() && m.SendTime.Before(s.boundary) {
			ch.stats.history.Add(1)
			s.tr.settled(p, m.MsgID)
			continue
		}
		it := s.newItem(m, status.Reply)
		if m.Origin == OriginCustomer {
			s.mu.Lock()
			s.lastPulled[it.key] = time.Now()
			s.mu.Unlock()
		}
		if !s.admit(it, false) {
			s.tr.add(p, m.MsgID, msgDeferred, it.key)
			continue
		}
		if s.tr.add(p, m.MsgID, msgInFlight, it.key) {
			s.submit(it)
		}
	}
	if p != nil {
		s.tr.seal(p)
	}
	return true
}

// holdsNew reports whether a page pulled again by a rewind holds a message never pulled before in
// this holding (the rewind has then reached new messages).
func (s *session) holdsNew(msgs []Message, st []cursor.Status) bool {
	j := 0
	for i := range msgs {
		m := &msgs[i]
		if !validMsgID(m.MsgID) {
			continue
		}
		status := st[j]
		j++
		if _, known := s.tr.state(m.MsgID); known || status.Done {
			continue
		}
		if !s.boundary.IsZero() && m.SendTime.Before(s.boundary) {
			continue
		}
		return true
	}
	return false
}

// readmit queues a deferred message that a rewind pulled again, if its customer now has room.
// A rewind sees deferred messages in pull order, so each customer's are queued in order.
func (s *session) readmit(m *Message, status cursor.Status) {
	it := s.newItem(m, status.Reply)
	if !status.Done && !s.admit(it, true) {
		return
	}
	s.mu.Lock()
	s.deferring[it.key]--
	if s.deferring[it.key] <= 0 {
		delete(s.deferring, it.key)
	}
	s.mu.Unlock()
	if status.Done {
		s.tr.done(m.MsgID) // finished meanwhile (a replay of an older holding's work)
		return
	}
	s.tr.undefer(m.MsgID)
	s.submit(it)
}

// admit decides whether a message is queued now or deferred. Deferral keeps a customer's order: once
// one of their messages is deferred, every later one is too, until a rewind queues them in order.
// The budget: a customer's queued messages may hold at most a quarter of WithQueueBytes, all of
// them together at most WithQueueBytes (a single message always fits an empty queue).
func (s *session) admit(it *item, readmit bool) bool {
	ch := s.ch
	s.mu.Lock()
	defer s.mu.Unlock()
	if readmit {
		if s.stuck[it.key] {
			return false
		}
	} else if s.deferring[it.key] > 0 {
		s.deferring[it.key]++
		ch.stats.deferred.Add(1)
		return false
	}
	keyBytes, total := ch.disp.keyBytes(it.key)
	fits := (keyBytes == 0 || keyBytes+it.size <= ch.cfg.queueBytes/4) &&
		(total == 0 || total+it.size <= ch.cfg.queueBytes)
	if fits {
		return true
	}
	if readmit {
		s.stuck[it.key] = true
		return false
	}
	s.deferring[it.key]++
	ch.stats.deferred.Add(1)
	return false
}

// maybeRewind asks for a rewind once a customer with deferred messages has room again.
func (s *session) maybeRewind(key string) {
	ch := s.ch
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deferring) == 0 || s.rewindReq || s.rewinding {
		return
	}
	_, total := ch.disp.keyBytes(key)
	if total > ch.cfg.queueBytes/2 {
		return
	}
	for k := range s.deferring {
		if kb, _ := ch.disp.keyBytes(k); kb <= ch.cfg.queueBytes/8 {
			s.rewindReq = true
			select {
			case s.signal <- struct{}{}:
			default:
			}
			return
		}
	}
}
