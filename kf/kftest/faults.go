package kftest

import (
	"slices"
	"time"
)

// Faults describes misbehaviour to inject, like a busy or flaky WeCom (§10). Decisions use the
// Server's random source (deterministic under WithSeed for a given call order).
type Faults struct {
	// BusyRate is the fraction of calls answered {"errcode":-1,"errmsg":"system busy"} without effect.
	BusyRate float64
	// Latency delays every affected call; LatencyJitter adds a uniform random 0..LatencyJitter.
	Latency       time.Duration
	LatencyJitter time.Duration
	// DropRate is the fraction of calls whose connection is closed without any response (hijacked).
	DropRate float64
	// DropAfterProcessing makes a dropped call take effect first (a send is accepted, a token issued)
	// and lose only its answer: the case an idempotency key (client msgid) exists for.
	DropAfterProcessing bool
	// EmptyPageRate is the fraction of sync_msg pages answered with an empty msg_list, has_more 1 and
	// an unchanged cursor although messages are waiting (WeCom does this; §4 "keep pulling").
	EmptyPageRate float64
	// Paths limits the faults to these request paths (e.g. "/cgi-bin/kf/send_msg"); empty = all.
	Paths []string
}

func (f Faults) applies(path string) bool {
	return len(f.Paths) == 0 || slices.Contains(f.Paths, path)
}

// SetFaults replaces the injected faults; SetFaults(Faults{}) turns them off.
func (s *Server) SetFaults(f Faults) {
	f.Paths = slices.Clone(f.Paths)
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}
