package kf

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/wxkf/wxkf/cursor"
)

// historyKeySuffix names the Store entry that keeps the skip-history boundary of an account
// until its first cursor is saved, so that a restart in between uses the same boundary (a new
// one would skip messages the first run had pulled but not finished).
const historyKeySuffix = "#wxkf_history_before"

// syncLimit is sync_msg's page size: the maximum, 1000 (§4).
const syncLimit = 1000

// account is the sync state of one open_kfid in this process.
type account struct {
	ch *Channel
	id string

	mu      sync.Mutex
	token   string // the newest callback token (valid 10 minutes, §1)
	tokenAt time.Time
	pending bool // a trigger arrived that no pull has covered yet
	active  bool // run() is alive
	wake    chan struct{}

	// Retries of one callback carry the same token. rounds counts pull rounds started; seen maps
	// a token to the value of rounds when it was first seen: once a round has started since, a
	// repeat of that token is already covered and costs nothing.
	rounds uint64
	seen   map[string]uint64
	order  []string // seen's keys, oldest first (bounded)
}

// maxSeenTokens bounds the tokens remembered for coalescing (one per recent callback).
const maxSeenTokens = 256

// trigger records a callback (or poll) for openKfID and starts its loop if it is not running.
// Triggers coalesce: however many arrive during a pull, they cost one more pull round.
func (ch *Channel) trigger(openKfID, token string) {
	ch.accMu.Lock()
	defer ch.accMu.Unlock()
	if ch.stopping.Load() {
		return // Shutdown waits for the loops: none may start after it began
	}
	a := ch.accounts[openKfID]
	if a == nil {
		a = &account{ch: ch, id: openKfID, wake: make(chan struct{}, 1)}
		ch.accounts[openKfID] = a
	}
	a.mu.Lock()
	if token != "" {
		if first, ok := a.seen[token]; ok && a.rounds > first {
			a.mu.Unlock()
			ch.stats.coalesced.Add(1)
			return // a retry of a callback whose messages a pull that started later has covered
		}
		a.remember(token)
		a.token, a.tokenAt = token, ch.now()
	}
	a.pending = true
	start := !a.active
	a.active = true
	a.mu.Unlock()
	if start {
		ch.accWG.Add(1)
		go a.run()
		return
	}
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
	if tok != "" && a.ch.now().Sub(a.tokenAt) > 9*time.Minute { // valid 10 min; keep a margin
		tok = ""
	}
	return true, tok
}

func (a *account) dropToken(tok string) {
	a.mu.Lock()
	if a.token == tok {
		a.token = ""
	}
	a.mu.Unlock()
}

// run holds the account's lease while there is work: pulls, in-flight handlers, cursor commits.
func (a *account) run() {
	ch := a.ch
	defer ch.accWG.Done()
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
				ch.noteErr("lock", err)
				bo.wait(ch.pullCtx)
			}
			continue
		}
		bo.reset()
		s := &session{a: a, lease: lease, bo: ch.newBackoff(), tr: newTracker()}
		s.run()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ch.workCtx), 5*time.Second)
		if err := lease.Release(rctx); err != nil && !errors.Is(err, cursor.ErrLeaseLost) {
			ch.log.Warn("wxkf: lease release (it expires on its own)", "open_kfid", a.id, "err", err)
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

// session is one holding of an account's lease.
type session struct {
	a     *account
	lease cursor.Lease
	bo    *backoff
	tr    *tracker

	loaded     bool
	pullCursor string    // where the next sync_msg starts: the newest next_cursor pulled
	saved      string    // the cursor last saved (by load, then only by the committer)
	boundary   time.Time // skip messages sent before this (zero: skip nothing)

	commitReq  chan struct{}
	stopCommit chan struct{}
}

func (s *session) lost() bool { return s.lease.Err() != nil }

func (s *session) run() {
	ch := s.a.ch
	s.commitReq = make(chan struct{}, 1)
	s.stopCommit = make(chan struct{})
	committed := make(chan struct{})
	go s.committer(committed)
	defer func() {
		close(s.stopCommit)
		<-committed // the final save, unless the lease was lost or work was abandoned
	}()
	for {
		if s.lost() || ch.workCtx.Err() != nil {
			return // never save after losing the lease: another replica may be pulling
		}
		if ch.pullCtx.Err() == nil && s.tr.inflight() < ch.cfg.maxInflight {
			if ok, tok := s.a.takePending(); ok {
				if !s.pull(tok) {
					s.a.mu.Lock()
					s.a.pending = true // not covered: pull again after the backoff
					s.a.mu.Unlock()
					s.bo.wait(ch.pullCtx)
				}
				continue
			}
		}
		s.requestCommit()
		s.a.mu.Lock()
		pending := s.a.pending && ch.pullCtx.Err() == nil
		s.a.mu.Unlock()
		if !pending && s.tr.inflight() == 0 {
			return
		}
		stopPull := ch.pullCtx.Done()
		if ch.pullCtx.Err() != nil {
			stopPull = nil // already closed: only finishing work matters now
		}
		select {
		case <-s.a.wake:
		case <-s.tr.progress:
		case <-s.lease.Done():
		case <-ch.workCtx.Done():
		case <-stopPull:
		}
	}
}

func (s *session) requestCommit() {
	select {
	case s.commitReq <- struct{}{}:
	default:
	}
}

// committer saves the newest cursor whose pages are all done, off the pull loop so a slow store
// (fsync, a Redis round trip) never delays pulling. It never saves once the lease is lost. Save
// errors are retried with backoff; the cursor only trails, so a late save loses nothing.
func (s *session) committer(done chan<- struct{}) {
	ch := s.a.ch
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
			if !ok || cur == s.saved || s.lost() || ch.workCtx.Err() != nil {
				break
			}
			if err := ch.stores.Save(ch.workCtx, s.a.id, cur); err != nil {
				ch.noteErr("cursor save", err)
				if !bo.wait(ch.workCtx) {
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
	ch := s.a.ch
	ctx := ch.pullCtx
	cur, err := ch.stores.Load(ctx, s.a.id)
	if err != nil {
		ch.noteErr("cursor load", err)
		return false
	}
	s.pullCursor, s.saved = cur, cur
	if cur == "" && ch.cfg.skipHistory {
		key := s.a.id + historyKeySuffix
		b, err := ch.stores.Load(ctx, key)
		if err != nil {
			ch.noteErr("cursor load", err)
			return false
		}
		sec, perr := strconv.ParseInt(b, 10, 64)
		if b == "" || perr != nil {
			sec = ch.start.Unix()
			if s.lost() {
				return false
			}
			if err := ch.stores.Save(ctx, key, strconv.FormatInt(sec, 10)); err != nil {
				ch.noteErr("cursor save", err)
				return false
			}
		}
		s.boundary = time.Unix(sec, 0)
	}
	s.loaded = true
	return true
}

// pull runs sync_msg from pullCursor until has_more is 0, dispatching each page. It reports
// false when it stopped on an error (the caller backs off and pulls again).
func (s *session) pull(token string) bool {
	ch := s.a.ch
	if !s.loaded && !s.load() {
		return false
	}
	for {
		if s.lost() || ch.pullCtx.Err() != nil {
			return true
		}
		resp, err := ch.client.SyncMsg(ch.pullCtx, SyncMsgRequest{
			Cursor: s.pullCursor, Token: token, Limit: syncLimit, OpenKfID: s.a.id,
		})
		if err != nil {
			if token != "" && errors.Is(err, ErrInvalidMsgToken) {
				s.a.dropToken(token) // expired or bad: pull without it (rate-limited, but works)
				token = ""
				continue
			}
			if ch.pullCtx.Err() == nil {
				ch.noteErr("sync_msg", err)
			}
			return false
		}
		ch.stats.pulls.Add(1)
		if !s.dispatchPage(resp) {
			return false
		}
		if resp.NextCursor != "" {
			s.pullCursor = resp.NextCursor
		}
		s.bo.reset()
		if !resp.HasMore {
			return true
		}
		if s.tr.inflight() >= ch.cfg.maxInflight {
			s.a.mu.Lock()
			s.a.pending = true // resume paging once handlers catch up
			s.a.mu.Unlock()
			return true
		}
	}
}

// dispatchPage dedupes a page and hands each message to the dispatcher. Its cursor commits once
// every message it dispatched is done.
func (s *session) dispatchPage(resp *SyncMsgResponse) bool {
	ch := s.a.ch
	msgs := resp.Messages
	ids := make([]string, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].MsgID
	}
	var done []bool
	if len(ids) > 0 {
		var err error
		done, err = ch.stores.Done(ch.pullCtx, s.a.id, ids...)
		if err != nil || len(done) != len(ids) {
			if err == nil {
				err = errors.New("dedup answered a wrong number of results")
			}
			ch.noteErr("dedup", err)
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
		if m.Origin == OriginCustomer {
			ch.quota.observe(m)
		}
	}
	pg := s.tr.addPage(resp.NextCursor)
	for i := range msgs {
		m := &msgs[i]
		ch.stats.messages.Add(1)
		if done[i] || m.MsgID == "" {
			ch.stats.dedupeHits.Add(1)
			continue
		}
		if !s.boundary.IsZero() && m.SendTime.Before(s.boundary) {
			ch.stats.history.Add(1)
			continue
		}
		if !s.tr.add(pg, m.MsgID) {
			ch.stats.dedupeHits.Add(1) // already in flight from an earlier page: wait for it there
			continue
		}
		ch.submit(s.a.id, m, s.tr)
	}
	s.tr.seal(pg)
	return true
}

// tracker follows in-flight messages per page so the saved cursor trails the oldest one.
type tracker struct {
	mu       sync.Mutex
	pages    []*page
	byMsg    map[string][]*page
	count    int           // in-flight messages
	ready    string        // newest cursor whose pages (and all before) are done
	progress chan struct{} // signalled when a page completes
}

type page struct {
	next    string
	pending int
	sealed  bool
}

func newTracker() *tracker {
	return &tracker{byMsg: make(map[string][]*page), progress: make(chan struct{}, 1)}
}

func (t *tracker) addPage(next string) *page {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &page{next: next}
	t.pages = append(t.pages, p)
	return p
}

// add registers msgID as pending on p. It reports false when msgID was already in flight (it is
// then pending on p too, and done once for both).
func (t *tracker) add(p *page, msgID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, inflight := t.byMsg[msgID]
	t.byMsg[msgID] = append(prev, p)
	p.pending++
	if !inflight {
		t.count++
	}
	return !inflight
}

func (t *tracker) seal(p *page) {
	t.mu.Lock()
	p.sealed = true
	t.mu.Unlock()
	t.advance()
}

func (t *tracker) done(msgID string) {
	t.mu.Lock()
	for _, p := range t.byMsg[msgID] {
		p.pending--
	}
	if _, ok := t.byMsg[msgID]; ok {
		delete(t.byMsg, msgID)
		t.count--
	}
	t.mu.Unlock()
	t.advance()
}

func (t *tracker) advance() {
	t.mu.Lock()
	moved := false
	for len(t.pages) > 0 && t.pages[0].sealed && t.pages[0].pending == 0 {
		if t.pages[0].next != "" {
			t.ready = t.pages[0].next
		}
		t.pages[0] = nil
		t.pages = t.pages[1:]
		moved = true
	}
	t.mu.Unlock()
	if moved || t.inflight() == 0 {
		select {
		case t.progress <- struct{}{}:
		default:
		}
	}
}

func (t *tracker) committable() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready, t.ready != ""
}

func (t *tracker) inflight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// backoff is a jittered exponential wait between retries of store and API errors.
type backoff struct {
	min, max, cur time.Duration
}

func (ch *Channel) newBackoff() *backoff {
	return &backoff{min: ch.cfg.backoffMin, max: ch.cfg.backoffMax}
}

func (b *backoff) reset() { b.cur = 0 }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return b.cur/2 + rand.N(b.cur/2+1) // "equal jitter"
}

// wait sleeps for the next backoff; it reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
