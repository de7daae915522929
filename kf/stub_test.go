package kf_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// stub is a minimal scripted WeCom for retry, timeout, token and sanitising tests, where the
// exact sequence of answers matters more than behaviour (kftest covers behaviour).
type stub struct {
	srv *httptest.Server

	mu       sync.Mutex
	calls    map[string]int
	tokens   []string // access_token of every API call, in order
	tokenN   atomic.Int32
	tokenFn  func(n int) (status int, body string)
	apiFn    func(path string, n int) (status int, body string)
	tokenLag time.Duration
}

const (
	stubCorp   = "wwstubcorp"
	stubSecret = "STUB-SECRET-do-not-leak-0123456789"
)

// stubToken is the token the stub's gettoken issues the nth time (1-based).
func stubToken(n int) string { return fmt.Sprintf("STUBTOKEN-%02d-abcdefghijklmnop", n) }

func newStub(t testing.TB) *stub {
	t.Helper()
	s := &stub{calls: map[string]int{}}
	s.tokenFn = func(n int) (int, string) {
		return 200, fmt.Sprintf(`{"errcode":0,"errmsg":"ok","access_token":"%s","expires_in":7200}`, stubToken(n))
	}
	s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":0,"errmsg":"ok"}` }
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/cgi-bin/gettoken" {
		n := int(s.tokenN.Add(1))
		if s.tokenLag > 0 {
			time.Sleep(s.tokenLag)
		}
		status, body := s.tokenFn(n)
		if status < 0 {
			hijackClose(w)
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return
	}
	s.mu.Lock()
	s.calls[r.URL.Path]++
	n := s.calls[r.URL.Path]
	s.tokens = append(s.tokens, r.URL.Query().Get("access_token"))
	fn := s.apiFn
	s.mu.Unlock()
	status, body := fn(r.URL.Path, n)
	switch {
	case status < 0: // drop the connection without an answer
		hijackClose(w)
		return
	case status == 0: // hang until the client gives up
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
}

func (s *stub) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

func (s *stub) usedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

func (s *stub) client(t testing.TB, opts ...kf.ClientOption) *kf.Client {
	t.Helper()
	opts = append([]kf.ClientOption{kf.WithBaseURL(s.srv.URL), kf.WithRetry(3, time.Millisecond, 2*time.Millisecond)}, opts...)
	c, err := kf.NewClient(stubCorp, stubSecret, opts...)
	require.NoError(t, err)
	return c
}

// closedPortURL is the URL of a loopback port nobody listens on.
func closedPortURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// countingTransport counts round trips and the errors they returned.
type countingTransport struct {
	rt       http.RoundTripper
	trips    atomic.Int32
	failures atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.trips.Add(1)
	resp, err := c.rt.RoundTrip(r)
	if err != nil {
		c.failures.Add(1)
	}
	return resp, err
}
