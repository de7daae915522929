package kf

import "sync"

// tracker follows the messages of one lease holding (a session), page by page, so that the saved
// cursor trails the oldest message not yet done: a page's next_cursor becomes committable only
// when every message of that page and of every page before it is settled (done, or skipped as
// history, a dedupe hit or a malformed item). A crash therefore replays from the oldest unfinished
// message, and the dedupe set skips what was done after it.
//
// It also remembers every msgid of the pages not yet committed, whatever became of it. A rewind
// (see session.rewind) pulls some of those pages again to pick up messages that were deferred
// rather than queued; the tracker tells the rewind which messages it has seen before, so that a
// page is added again only when it holds a message never pulled.
type tracker struct {
	mu       sync.Mutex
	pages    []*page          // not yet committed, in pull order
	msgs     map[string]*tmsg // msgids of those pages
	pending  int              // messages in flight, deferred or abandoned
	deferred int              // of which deferred
	ready    string           // newest committable next_cursor
	progress chan struct{}    // signalled when a page commits
}

// page is one sync_msg answer.
type page struct {
	start    string // the cursor it was pulled with
	next     string // its next_cursor
	pending  int    // its messages not yet settled
	deferred int    // of which deferred
	sealed   bool   // every message of the page was registered
	ids      []string
}

type msgState uint8

const (
	msgSettled   msgState = iota // done, or skipped: nothing more to do
	msgInFlight                  // queued, running or waiting for a retry
	msgDeferred                  // pulled but not queued (over the memory budget): a rewind picks it up
	msgAbandoned                 // left for the next holding (shutdown, lease lost): never settles here
)

type tmsg struct {
	state msgState
	key   string  // the customer (deferred messages)
	pages []*page // pages it is pending on
}

func newTracker() *tracker {
	return &tracker{msgs: make(map[string]*tmsg), progress: make(chan struct{}, 1)}
}

func (t *tracker) addPage(start, next string) *page {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := &page{start: start, next: next}
	t.pages = append(t.pages, p)
	return p
}

// state reports what the tracker knows of msgID.
func (t *tracker) state(msgID string) (msgState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.msgs[msgID]; ok {
		return m.state, true
	}
	return 0, false
}

// settled registers msgID on p as needing nothing (a dedupe hit, history, ...). A msgid already
// known is left as it is.
func (t *tracker) settled(p *page, msgID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.msgs[msgID]; ok {
		return
	}
	t.msgs[msgID] = &tmsg{state: msgSettled}
	p.ids = append(p.ids, msgID)
}

// add registers msgID as pending on p in state st (msgInFlight or msgDeferred). It reports false
// when msgID was already known: if it is still pending it is then pending on p too (and settles
// once for both pages); the caller must not queue it again.
func (t *tracker) add(p *page, msgID string, st msgState, key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.msgs[msgID]; ok {
		if m.state != msgSettled {
			m.pages = append(m.pages, p)
			p.pending++
			if m.state == msgDeferred {
				p.deferred++
			}
			p.ids = append(p.ids, msgID)
		}
		return false
	}
	m := &tmsg{state: st, key: key, pages: []*page{p}}
	t.msgs[msgID] = m
	p.ids = append(p.ids, msgID)
	p.pending++
	t.pending++
	if st == msgDeferred {
		p.deferred++
		t.deferred++
	}
	return true
}

// undefer moves a deferred msgID to in flight (it was queued by a rewind).
func (t *tracker) undefer(msgID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[msgID]
	if m == nil || m.state != msgDeferred {
		return
	}
	m.state = msgInFlight
	for _, p := range m.pages {
		p.deferred--
	}
	t.deferred--
}

// abandon marks msgID as left for the next holding: it stays pending, so no cursor passes it.
func (t *tracker) abandon(msgID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[msgID]
	if m == nil || m.state == msgSettled || m.state == msgAbandoned {
		return
	}
	if m.state == msgDeferred {
		for _, p := range m.pages {
			p.deferred--
		}
		t.deferred--
	}
	m.state = msgAbandoned
}

// done settles msgID and commits whatever pages that completes.
func (t *tracker) done(msgID string) {
	t.mu.Lock()
	m := t.msgs[msgID]
	if m == nil || m.state == msgSettled {
		t.mu.Unlock()
		return
	}
	if m.state == msgDeferred {
		for _, p := range m.pages {
			p.deferred--
		}
		t.deferred--
	}
	for _, p := range m.pages {
		p.pending--
	}
	m.state = msgSettled
	t.pending--
	t.mu.Unlock()
	t.advance()
}

func (t *tracker) seal(p *page) {
	t.mu.Lock()
	p.sealed = true
	t.mu.Unlock()
	t.advance()
}

// advance commits the leading pages that are sealed and settled.
func (t *tracker) advance() {
	t.mu.Lock()
	moved := false
	for len(t.pages) > 0 && t.pages[0].sealed && t.pages[0].pending == 0 {
		p := t.pages[0]
		if p.next != "" {
			t.ready = p.next
		}
		for _, id := range p.ids {
			m := t.msgs[id]
			if m == nil {
				continue
			}
			for i, q := range m.pages {
				if q == p {
					m.pages = append(m.pages[:i], m.pages[i+1:]...)
					break
				}
			}
			if len(m.pages) == 0 && m.state == msgSettled {
				delete(t.msgs, id)
			}
		}
		t.pages[0] = nil
		t.pages = t.pages[1:]
		moved = true
	}
	t.mu.Unlock()
	if moved {
		select {
		case t.progress <- struct{}{}:
		default:
		}
	}
}

// committable returns the newest cursor whose pages, and all before, are settled.
func (t *tracker) committable() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready, t.ready != ""
}

// rewindStart returns the cursor of the oldest page holding a deferred message.
func (t *tracker) rewindStart() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pages {
		if p.deferred > 0 {
			return p.start, true
		}
	}
	return "", false
}

// counts returns the messages pending, of which deferred, and the msgids remembered.
func (t *tracker) counts() (pending, deferred, known int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending, t.deferred, len(t.msgs)
}
