package kf_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf"
)

// access_token and corpsecret never appear in an error string or a log line (§3), whatever fails:
// network errors, HTTP errors whose body echoes the URL, errcode errors whose errmsg echoes them,
// token fetch errors, redirects, timeouts.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T) (*kf.Client, *logBuffer)
		call  func(c *kf.Client) error
	}{
		{"gettoken to a closed port", func(t *testing.T) (*kf.Client, *logBuffer) {
			return leakClient(t, closedPortURL(t))
		}, syncCall},
		{"api call dropped after the token", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) { return -1, "" }
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"send dropped (not retried)", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) { return -1, "" }
			return leakClient(t, s.srv.URL)
		}, sendCall("")},
		{"api call timeout", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) { return 0, "" }
			return leakClient(t, s.srv.URL, kf.WithTimeout(50*time.Millisecond))
		}, syncCall},
		{"HTTP 500 echoing the URL", func(t *testing.T) (*kf.Client, *logBuffer) {
			return leakClient(t, echoServer(t, 500).URL)
		}, syncCall},
		{"HTTP 403 echoing the URL on gettoken", func(t *testing.T) (*kf.Client, *logBuffer) {
			return leakClient(t, echoServer(t, 403).URL)
		}, func(c *kf.Client) error { _, err := c.AccessToken(context.Background()); return err }},
		{"errcode with errmsg echoing secrets", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) {
				return 200, fmt.Sprintf(`{"errcode":40058,"errmsg":"bad request access_token=%s token %s secret %s"}`, stubToken(1), stubToken(1), stubSecret)
			}
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"busy then exhausted", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":-1,"errmsg":"system busy"}` }
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"gettoken 40001 echoing the secret", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.tokenFn = func(int) (int, string) {
				return 200, `{"errcode":40001,"errmsg":"invalid credential corpsecret=` + stubSecret + `"}`
			}
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"gettoken dropped", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.tokenFn = func(int) (int, string) { return -1, "" }
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"redirect loop", func(t *testing.T) (*kf.Client, *logBuffer) {
			return leakClient(t, redirectServer(t).URL)
		}, syncCall},
		{"token rejected twice", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) { return 200, `{"errcode":40014,"errmsg":"invalid access_token"}` }
			return leakClient(t, s.srv.URL)
		}, syncCall},
		{"download error body", func(t *testing.T) (*kf.Client, *logBuffer) {
			s := newStub(t)
			s.apiFn = func(string, int) (int, string) {
				return 200, `{"errcode":40007,"errmsg":"invalid media_id, access_token=` + stubToken(1) + `"}`
			}
			return leakClient(t, s.srv.URL)
		}, func(c *kf.Client) error {
			var sb strings.Builder
			_, err := c.DownloadMedia(context.Background(), "m", &sb)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, logs := tc.setup(t)
			err := tc.call(c)
			require.Error(t, err)
			assertNoSecret(t, err.Error(), "err.Error()")
			assertNoSecret(t, fmt.Sprintf("%+v", err), "%+v")
			var ue *url.Error
			if errors.As(err, &ue) {
				assertNoSecret(t, ue.URL, "url.Error.URL")
				assertNoSecret(t, ue.Error(), "url.Error")
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				assertNoSecret(t, e.Error(), "wrapped error")
			}
			assertNoSecret(t, logs.String(), "logs")
			assert.NotEmpty(t, logs.String(), "the failure was logged at all")
		})
	}
}

func assertNoSecret(t *testing.T, s, where string) {
	t.Helper()
	assert.NotContains(t, s, stubSecret, where)
	for n := 1; n <= 5; n++ {
		assert.NotContains(t, s, stubToken(n), where)
	}
	assert.NotContains(t, s, "STUBTOKEN", where)
	assert.NotContains(t, s, "STUB-SECRET", where)
}

func leakClient(t *testing.T, base string, opts ...kf.ClientOption) (*kf.Client, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts = append([]kf.ClientOption{kf.WithBaseURL(base), kf.WithLogger(logs.logger()), kf.WithRetry(2, time.Millisecond, time.Millisecond)}, opts...)
	c, err := kf.NewClient(stubCorp, stubSecret, opts...)
	require.NoError(t, err)
	return c, logs
}

// echoServer issues tokens and answers every API call with status and the full request URL in the
// body, like a misbehaving proxy's error page.
func echoServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	return newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/gettoken" && status != 403 {
			fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":"%s","expires_in":7200}`, stubToken(1))
			return
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "error for %s (raw query %s)", r.URL.String(), r.URL.RawQuery)
	})
}

// redirectServer issues tokens and redirects every API call to itself, query included, forever.
func redirectServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/gettoken" {
			fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":"%s","expires_in":7200}`, stubToken(1))
			return
		}
		http.Redirect(w, r, r.URL.String()+"&again=1", http.StatusFound)
	})
}

func newHTTPServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
