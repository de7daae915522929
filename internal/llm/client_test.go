package llm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/internal/llm/llmtest"
)

const testKey = "sk-test-0123456789abcdefSECRET"

// pngBytes is the smallest valid PNG header that http.DetectContentType recognises.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")

func newClient(t *testing.T, base string, opts ...llm.Option) *llm.Client {
	t.Helper()
	c, err := llm.New(base, testKey, "gpt-test", opts...)
	require.NoError(t, err)
	return c
}

func TestStreamDeliversDeltasInOrder(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(llmtest.WithAPIKey(testKey), llmtest.WithChunkRunes(2))
	defer srv.Close()
	answer := "你好！I am a bot 🤖 with emoji 👩‍👩‍👧 and 中文。\n\nSecond paragraph."
	srv.SetAnswer(func(llmtest.Request) string { return answer })
	c := newClient(t, srv.URL()+"/v1")

	var deltas []string
	got, err := c.Stream(context.Background(), []llm.Message{
		{Role: llm.RoleSystem, Content: "be brief"},
		{Role: llm.RoleUser, Content: "hi"},
	}, func(d string) { deltas = append(deltas, d) })
	require.NoError(t, err)
	assert.Equal(t, answer, got)
	assert.Equal(t, answer, strings.Join(deltas, ""))
	assert.Greater(t, len(deltas), 10, "streamed in many pieces")

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.True(t, reqs[0].Stream)
	assert.Equal(t, "gpt-test", reqs[0].Model)
	assert.Equal(t, []llm.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}}, reqs[0].Messages)
	assert.Zero(t, reqs[0].MaxTokens)
	assert.Nil(t, reqs[0].Temperature)
}

func TestStreamNilOnDelta(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer()
	defer srv.Close()
	got, err := newClient(t, srv.URL()+"/v1").Stream(context.Background(), []llm.Message{{Role: "user", Content: "x"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, "echo: x", got)
}

func TestComplete(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(llmtest.WithAPIKey(testKey))
	defer srv.Close()
	got, err := newClient(t, srv.URL()+"/v1").Complete(context.Background(), []llm.Message{{Role: "user", Content: "ping"}})
	require.NoError(t, err)
	assert.Equal(t, "echo: ping", got)
	require.Len(t, srv.Requests(), 1)
	assert.False(t, srv.Requests()[0].Stream)
}

func TestRequestOptionsAndImages(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer()
	defer srv.Close()
	c := newClient(t, srv.URL()+"/v1/", llm.WithMaxTokens(300), llm.WithTemperature(0.2))
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte{1}, 100)...)
	_, err := c.Stream(context.Background(), []llm.Message{
		{Role: "user", Content: "what is this?", Images: [][]byte{jpeg, pngBytes}},
		{Role: "assistant", Content: "a picture"},
		{Role: "user", Images: [][]byte{pngBytes}},
	}, nil)
	require.NoError(t, err)
	r := srv.Requests()[0]
	assert.Equal(t, 300, r.MaxTokens)
	require.NotNil(t, r.Temperature)
	assert.InDelta(t, 0.2, *r.Temperature, 1e-9)
	require.Len(t, r.Messages, 3)
	assert.Equal(t, "what is this?", r.Messages[0].Content)
	assert.Equal(t, [][]byte{jpeg, pngBytes}, r.Messages[0].Images)
	assert.Empty(t, r.Messages[2].Content)
	assert.Equal(t, [][]byte{pngBytes}, r.Messages[2].Images)
	assert.Equal(t, []string{"image/jpeg", "image/png", "image/png"}, r.ImageTypes)
}

func TestRequestRejectsBadInput(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer hs.Close()
	c := newClient(t, hs.URL)
	for name, msgs := range map[string][]llm.Message{
		"none":        nil,
		"no role":     {{Content: "x"}},
		"not image":   {{Role: "user", Images: [][]byte{[]byte("%PDF-1.4 hello")}}},
		"image large": {{Role: "user", Images: [][]byte{append([]byte{0xff, 0xd8, 0xff}, make([]byte, llm.MaxImageBytes)...)}}},
	} {
		_, err := c.Stream(context.Background(), msgs, nil)
		assert.Error(t, err, name)
		_, err = c.Complete(context.Background(), msgs)
		assert.Error(t, err, name)
	}
	_, err := c.Complete(context.Background(), []llm.Message{{Role: "user", Images: [][]byte{[]byte("plain text")}}})
	assert.ErrorIs(t, err, llm.ErrUnsupportedImage)
	assert.Zero(t, calls.Load(), "nothing invalid is sent")
}

// The API key never appears in an error, whatever the API or the network answers.
func TestErrorsNeverHoldTheKey(t *testing.T) {
	t.Parallel()
	leak := "key " + testKey + " Bearer " + testKey
	cases := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		message string
	}{
		{"401 quoting the key", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s.","type":"invalid_request_error","code":"invalid_api_key"}}`, testKey)
		}, 401, "Incorrect API key provided: [REDACTED]."},
		{"plain body echoing the header", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>bad gateway for %s</html>", r.Header.Get("Authorization"))
		}, 502, "<html>bad gateway for Bearer [REDACTED]</html>"},
		{"string error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(429)
			fmt.Fprintf(w, `{"error":"rate limited %s"}`, leak)
		}, 429, "rate limited key [REDACTED] Bearer [REDACTED]"},
		{"message only", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprintf(w, `{"message":"oops %s"}`, testKey)
		}, 500, "oops [REDACTED]"},
		{"error inside the stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n")
			fmt.Fprintf(w, "data: {\"error\":{\"message\":\"upstream failed for %s\",\"type\":\"server_error\",\"code\":500}}\n\n", testKey)
		}, 200, "upstream failed for [REDACTED]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(tc.handler)
			defer hs.Close()
			c := newClient(t, hs.URL)
			_, err := c.Stream(context.Background(), []llm.Message{{Role: "user", Content: "hi"}}, nil)
			require.Error(t, err)
			var ae *llm.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.StatusCode)
			assert.Equal(t, tc.message, ae.Message)
			assertNoKey(t, err)
			if tc.status != 200 {
				_, err = c.Complete(context.Background(), []llm.Message{{Role: "user", Content: "hi"}})
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, tc.message, ae.Message)
				assertNoKey(t, err)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		t.Parallel()
		hs := httptest.NewServer(http.NotFoundHandler())
		hs.Close()
		c := newClient(t, hs.URL)
		_, err := c.Stream(context.Background(), []llm.Message{{Role: "user", Content: "hi"}}, nil)
		require.Error(t, err)
		assertNoKey(t, err)
	})
	t.Run("the client itself", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, "https://api.example.com/v1")
		for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
			assert.NotContains(t, s, testKey)
			assert.NotContains(t, s, "SECRET")
		}
		assert.Contains(t, c.String(), "https://api.example.com/v1/chat/completions")
	})
}

func assertNoKey(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		assert.NotContains(t, s, testKey)
		assert.NotContains(t, s, "SECRET")
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		assert.NotContains(t, e.Error(), "SECRET")
	}
}

func TestAPIErrorFields(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":{"message":"%s","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			strings.Repeat("长", 1000))
	}))
	defer hs.Close()
	_, err := newClient(t, hs.URL).Complete(context.Background(), []llm.Message{{Role: "user", Content: "hi"}})
	var ae *llm.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 400, ae.StatusCode)
	assert.Equal(t, "context_length_exceeded", ae.Code)
	assert.Equal(t, "invalid_request_error", ae.Type)
	assert.LessOrEqual(t, len(ae.Message), 512+len("…"), "the message is capped")
	assert.True(t, strings.HasSuffix(ae.Message, "…"))
	assert.Contains(t, err.Error(), "HTTP 400")
	assert.Contains(t, err.Error(), "context_length_exceeded")
}

// A server that ignores "stream": true and answers one JSON completion still works.
func TestStreamAcceptsAJSONAnswer(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"whole "},{"type":"text","text":"answer"}]}}]}`)
	}))
	defer hs.Close()
	var deltas []string
	got, err := newClient(t, hs.URL).Stream(context.Background(), []llm.Message{{Role: "user", Content: "hi"}}, func(d string) { deltas = append(deltas, d) })
	require.NoError(t, err)
	assert.Equal(t, "whole answer", got)
	assert.Equal(t, []string{"whole answer"}, deltas)
}

func TestCompleteMalformed(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not json":   "<html>",
		"no choices": `{"choices":[]}`,
		"bad parts":  `{"choices":[{"message":{"content":{"x":1}}}]}`,
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
		_, err := newClient(t, hs.URL).Complete(context.Background(), []llm.Message{{Role: "user", Content: "hi"}})
		assert.ErrorIs(t, err, llm.ErrMalformed, name)
		hs.Close()
	}
}

func TestResponseSizeIsCapped(t *testing.T) {
	t.Parallel()
	chunk := ": " + strings.Repeat("a", 1000) + "\n\n" // a comment: cheap to skip, still counted
	cases := map[string]http.HandlerFunc{
		"endless stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < (llm.MaxResponseBytes/len(chunk))+10; i++ {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		},
		"one huge line": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: "+strings.Repeat("x", llm.MaxLineBytes+10))
		},
		"huge json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"`+strings.Repeat("a", llm.MaxResponseBytes)+`"}}]}`)
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(h)
			defer hs.Close()
			got, err := newClient(t, hs.URL).Stream(context.Background(), []llm.Message{{Role: "user", Content: "hi"}}, nil)
			assert.ErrorIs(t, err, llm.ErrResponseTooLarge)
			assert.LessOrEqual(t, len(got), llm.MaxResponseBytes)
		})
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer(llmtest.WithChunkDelay(20 * time.Millisecond))
	defer srv.Close()
	srv.SetAnswer(func(llmtest.Request) string { return strings.Repeat("slow ", 200) })

	c := newClient(t, srv.URL(), llm.WithTimeout(100*time.Millisecond))
	start := time.Now()
	got, err := c.Stream(context.Background(), []llm.Message{{Role: "user", Content: "hi"}}, nil)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotEmpty(t, got, "the text received so far comes with the error")
	assert.Less(t, time.Since(start), 5*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	c = newClient(t, srv.URL())
	_, err = c.Stream(ctx, []llm.Message{{Role: "user", Content: "hi"}}, func(string) { cancel() })
	assert.ErrorIs(t, err, context.Canceled)
}

type countingTransport struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestWithHTTPClientIsUsedUnchanged(t *testing.T) {
	t.Parallel()
	srv := llmtest.NewServer()
	defer srv.Close()
	tr := &countingTransport{rt: http.DefaultTransport}
	hc := &http.Client{Transport: tr}
	c := newClient(t, srv.URL(), llm.WithHTTPClient(hc))
	_, err := c.Complete(context.Background(), []llm.Message{{Role: "user", Content: "x"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, tr.n.Load())
	assert.Zero(t, hc.Timeout)
	assert.Nil(t, hc.CheckRedirect)
	assert.Nil(t, hc.Jar)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	bad := []struct {
		name, base, key, model string
		opts                   []llm.Option
	}{
		{"empty base", "", "k", "m", nil},
		{"no scheme", "api.openai.com/v1", "k", "m", nil},
		{"ftp", "ftp://x/v1", "k", "m", nil},
		{"no host", "https:///v1", "k", "m", nil},
		{"user info", "https://u:pw@x/v1", "k", "m", nil},
		{"key with newline", "https://x/v1", "k\nX-Evil: 1", "m", nil},
		{"key with space", "https://x/v1", "k k", "m", nil},
		{"no model", "https://x/v1", "k", " ", nil},
		{"nil client", "https://x/v1", "k", "m", []llm.Option{llm.WithHTTPClient(nil)}},
		{"zero timeout", "https://x/v1", "k", "m", []llm.Option{llm.WithTimeout(0)}},
		{"zero tokens", "https://x/v1", "k", "m", []llm.Option{llm.WithMaxTokens(0)}},
		{"hot", "https://x/v1", "k", "m", []llm.Option{llm.WithTemperature(2.5)}},
		{"nan", "https://x/v1", "k", "m", []llm.Option{llm.WithTemperature(zero() / zero())}},
	}
	for _, tc := range bad {
		c, err := llm.New(tc.base, tc.key, tc.model, tc.opts...)
		assert.Error(t, err, tc.name)
		assert.Nil(t, c, tc.name)
	}
	_, err := llm.New("https://u:pw@x/v1?key=SECRET", "k", "m")
	assert.NotContains(t, err.Error(), "pw")
	assert.NotContains(t, err.Error(), "SECRET")

	c, err := llm.New("http://localhost:11434/v1?api-version=1", "", "llama3")
	require.NoError(t, err, "a local server needs no key")
	assert.Equal(t, "llama3", c.Model())
	assert.Contains(t, c.String(), "http://localhost:11434/v1/chat/completions?api-version=1")
	for _, full := range []string{"https://x/v1/chat/completions", "https://x/v1/chat/completions/"} {
		c, err = llm.New(full, "k", "m")
		require.NoError(t, err)
		assert.Contains(t, c.String(), "{"+full+",", "a full endpoint is kept")
	}
}

func zero() float64 { return 0 }

func TestEmptyKeySendsNoAuthorization(t *testing.T) {
	t.Parallel()
	var auth atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Values("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}]}`)
	}))
	defer hs.Close()
	c, err := llm.New(hs.URL, "", "m")
	require.NoError(t, err)
	got, err := c.Complete(context.Background(), []llm.Message{{Role: "user", Content: "x"}})
	require.NoError(t, err)
	assert.Equal(t, "ok", got)
	assert.Empty(t, auth.Load())
}

// FromEnv reads the environment (not parallel: t.Setenv).
func TestFromEnv(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_MODEL", "")
	_, ok := llm.FromEnv()
	assert.False(t, ok, "nothing set")

	t.Setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
	_, ok = llm.FromEnv()
	assert.False(t, ok, "no key")

	t.Setenv("OPENAI_API_KEY", testKey)
	c, ok := llm.FromEnv()
	require.True(t, ok)
	assert.Equal(t, llm.DefaultModel, c.Model())
	assert.Equal(t, "llm.Client{https://api.openai.com/v1/chat/completions, gpt-4o-mini}", c.String())

	t.Setenv("OPENAI_MODEL", "qwen-plus")
	c, ok = llm.FromEnv()
	require.True(t, ok)
	assert.Equal(t, "qwen-plus", c.Model())

	t.Setenv("OPENAI_BASE_URL", "not a url")
	_, ok = llm.FromEnv()
	assert.False(t, ok, "invalid base URL")
}
