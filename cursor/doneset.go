package cursor

// doneSet is the in-memory set of done msgids behind Memory and Dir: per account, msgid → time marked (unix
// ms), plus the marks in the order they were made so that expiry pops from the front in O(1) amortized time.
// Not safe for concurrent use; the owner locks.
type doneSet struct {
	retention int64 // ms
	m         map[string]map[string]doneMark
	fifo      []doneEntry
	head      int
	seq       uint64
	live      int
}

type doneMark struct {
	at  int64 // unix ms
	seq uint64
}

type doneEntry struct {
	at  int64
	seq uint64
	key string
	id  string
}

func newDoneSet(retentionMS int64) doneSet {
	return doneSet{retention: retentionMS, m: make(map[string]map[string]doneMark)}
}

// add marks id of key done at time at (unix ms), replacing an earlier mark.
func (s *doneSet) add(key, id string, at int64) {
	ids := s.m[key]
	if ids == nil {
		ids = make(map[string]doneMark)
		s.m[key] = ids
	}
	if _, ok := ids[id]; !ok {
		s.live++
	}
	s.seq++
	ids[id] = doneMark{at: at, seq: s.seq}
	s.fifo = append(s.fifo, doneEntry{at: at, seq: s.seq, key: key, id: id})
}

// has reports whether id of key was marked less than the retention before now (unix ms).
func (s *doneSet) has(key, id string, now int64) bool {
	mk, ok := s.m[key][id]
	return ok && now-mk.at < s.retention
}

// expire drops the marks made at least the retention before now (unix ms).
func (s *doneSet) expire(now int64) {
	for s.head < len(s.fifo) {
		e := s.fifo[s.head]
		if now-e.at < s.retention {
			break
		}
		s.fifo[s.head] = doneEntry{}
		s.head++
		ids := s.m[e.key]
		if mk, ok := ids[e.id]; ok && mk.seq == e.seq {
			delete(ids, e.id)
			s.live--
			if len(ids) == 0 {
				delete(s.m, e.key)
			}
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

// each calls fn for every live mark in the order the marks were made.
func (s *doneSet) each(fn func(e doneEntry)) {
	for _, e := range s.fifo[s.head:] {
		if mk, ok := s.m[e.key][e.id]; ok && mk.seq == e.seq {
			fn(e)
		}
	}
}
