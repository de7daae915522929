package kftest

import (
	"encoding/json"
	"time"
)

// Record kinds.
const (
	RecordAPI      = "api"      // an API call received by the fake
	RecordCallback = "callback" // a callback the fake delivered (Notify, Storm, VerifyURL, automatic)
)

// Record describes one API call or callback delivery, for a live panel (the sandbox) or a test log.
// Secrets never appear: access_token, corpsecret and callback/sync tokens are replaced by "…".
type Record struct {
	Kind   string // RecordAPI or RecordCallback
	Method string
	// Path is the API path, or for callbacks the callback URL's path.
	Path string
	// Query is the sanitised query string.
	Query string
	// Request is the sanitised request JSON (uploads: a summary {type, filename, size}).
	Request json.RawMessage
	// Response is the response JSON (media/get: a summary {content_type, filename, size}).
	Response json.RawMessage
	// Status is the HTTP status; 0 when the connection was dropped or a callback got no answer.
	Status int
	// ErrCode is the answer's errcode (API calls).
	ErrCode int
	// Err describes a transport failure ("connection dropped", a callback's error).
	Err      string
	Duration time.Duration
	At       time.Time
}

// Observe registers fn to be called for every API call and callback delivery, and returns a function
// that unregisters it. Calls are serialised (never two at once); fn must not block for long and must
// not call Observe or its cancel function.
func (s *Server) Observe(fn func(Record)) (cancel func()) {
	s.obsMu.Lock()
	id := s.obsNext
	s.obsNext++
	s.observers[id] = fn
	s.obsMu.Unlock()
	return func() {
		s.obsMu.Lock()
		delete(s.observers, id)
		s.obsMu.Unlock()
	}
}

func (s *Server) observed() bool {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	return len(s.observers) > 0
}

func (s *Server) emit(rec Record) {
	s.obsMu.Lock()
	defer s.obsMu.Unlock()
	for _, fn := range s.observers {
		fn(rec)
	}
}
