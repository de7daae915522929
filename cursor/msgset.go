package cursor

// msgSet is an in-memory set of msgids with the time each was added and an optional record, behind the done
// marks and the reply records of Memory and Dir: per account, msgid → (time added in unix ms, record), plus
// the additions in the order they were made so that expiry pops from the front in O(1) amortized time.
// Not safe for concurrent use; the owner locks.
type msgSet struct {
	retention int64 // ms
	m         map[string]map[string]msgMark
	fifo      []msgEntry
	head      int
	seq       uint64
	live      int
}

type msgMark struct {
	at  int64 // unix ms
	seq uint64
	rec []byte // nil for a done mark
}

type msgEntry struct {
	at  int64
	seq uint64
	key string
	id  string
}

func newMsgSet(retentionMS int64) msgSet {
	return msgSet{retention: retentionMS, m: make(map[string]map[string]msgMark)}
}

// add records id of key at time at (unix ms) with rec (nil for a done mark), replacing an earlier entry. The
// set keeps rec as is: the caller hands over a slice nobody else writes to.
func (s *msgSet) add(key, id string, at int64, rec []byte) {
	ids := s.m[key]
	if ids == nil {
		ids = make(map[string]msgMark)
		s.m[key] = ids
	}
	if _, ok := ids[id]; !ok {
		s.live++
	}
	s.seq++
	ids[id] = msgMark{at: at, seq: s.seq, rec: rec}
	s.fifo = append(s.fifo, msgEntry{at: at, seq: s.seq, key: key, id: id})
}

// get returns the entry of id of key if it was added less than the retention before now (unix ms).
func (s *msgSet) get(key, id string, now int64) (msgMark, bool) {
	mk, ok := s.m[key][id]
	if !ok || now-mk.at >= s.retention {
		return msgMark{}, false
	}
	return mk, true
}

// has reports whether id of key was added less than the retention before now (unix ms).
func (s *msgSet) has(key, id string, now int64) bool {
	_, ok := s.get(key, id, now)
	return ok
}

// remove drops id of key. Its queued entry stays behind and is skipped when it is popped.
func (s *msgSet) remove(key, id string) {
	ids := s.m[key]
	if _, ok := ids[id]; !ok {
		return
	}
	delete(ids, id)
	s.live--
	if len(ids) == 0 {
		delete(s.m, key)
	}
}

// expire drops the entries added at least the retention before now (unix ms).
func (s *msgSet) expire(now int64) {
	for s.head < len(s.fifo) {
		e := s.fifo[s.head]
		if now-e.at < s.retention {
			break
		}
		s.fifo[s.head] = msgEntry{}
		s.head++
		if mk, ok := s.m[e.key][e.id]; ok && mk.seq == e.seq {
			s.remove(e.key, e.id)
		}
	}
	// Reclaim the popped prefix once it is the larger half, so the backing array stays proportional to what
	// is queued.
	if s.head > 64 && s.head*2 >= len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.head:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.head = 0
	}
}

// each calls fn for every live entry in the order the entries were added.
func (s *msgSet) each(fn func(e msgEntry, rec []byte)) {
	for _, e := range s.fifo[s.head:] {
		if mk, ok := s.m[e.key][e.id]; ok && mk.seq == e.seq {
			fn(e, mk.rec)
		}
	}
}
