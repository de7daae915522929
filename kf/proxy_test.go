package kf

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// wecomProxy sits between a Channel and kftest, as a network between a bot and WeCom would: a
// rule can answer a call itself (a fault kftest does not model), hold it, or let it through.
type wecomProxy struct {
	srv   *httptest.Server
	rp    *httputil.ReverseProxy
	mu    sync.Mutex
	rules []proxyRule
	calls map[string]int
}

// proxyRule sees each API call; if it returns ok, its answer is sent instead of kftest's.
type proxyRule func(path string, body []byte) (status int, answer string, ok bool)

func newWecomProxy(t testing.TB, target string) *wecomProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &wecomProxy{rp: httputil.NewSingleHostReverseProxy(u), calls: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *wecomProxy) URL() string { return p.srv.URL }

func (p *wecomProxy) add(r proxyRule) {
	p.mu.Lock()
	p.rules = append(p.rules, r)
	p.mu.Unlock()
}

func (p *wecomProxy) clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

func (p *wecomProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[path]
}

func (p *wecomProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	p.calls[r.URL.Path]++
	rules := append([]proxyRule(nil), p.rules...)
	p.mu.Unlock()
	for _, rule := range rules {
		if status, answer, ok := rule(r.URL.Path, body); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, answer)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}
