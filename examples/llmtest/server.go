// Package llmtest is a fake OpenAI-compatible chat completion API for the examples' tests (examples/llm,
// examples/sandbox): an httptest server that answers POST …/chat/completions streamed (server-sent
// events, as OpenAI streams) or not, records every request with its messages (images decoded from
// their data: URLs), checks the API key, and fails on demand. Any OpenAI-compatible client can use it,
// such as the official SDK:
//
//	srv := llmtest.NewServer(llmtest.WithAPIKey("sk-test"))
//	defer srv.Close()
//	srv.SetAnswer(func(r llmtest.Request) string { return "echo: " + r.LastUser() })
//	client := openai.NewClient(option.WithBaseURL(srv.URL()+"/v1"), option.WithAPIKey("sk-test"))
//
// It is a test helper of the examples, not part of the SDK.
package llmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Roles of a chat message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one chat message of a request: its role, its text, and the images of its content parts.
type Message struct {
	Role    string
	Content string
	Images  [][]byte
}

// Request is a chat completion request the Server received.
type Request struct {
	Model       string
	Stream      bool
	MaxTokens   int
	Temperature *float64
	Messages    []Message // images decoded from their data: URLs
	ImageTypes  []string  // the media type of each image, in order
}

// LastUser returns the text of the last user message ("" if none).
func (r Request) LastUser() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == RoleUser {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Failure makes the Server answer with an error instead of a completion.
type Failure struct {
	Status  int    // HTTP status (e.g. 429); 200 sends the error as a stream event after Partial
	Message string // error.message
	Type    string // error.type
	Partial string // for Status 200: text streamed before the error event
}

// Option configures a Server.
type Option func(*Server)

// WithAPIKey makes the Server require "Authorization: Bearer key" (401 otherwise, with OpenAI's
// message, which quotes the wrong key as OpenAI does in part).
func WithAPIKey(key string) Option { return func(s *Server) { s.key = key } }

// WithChunkRunes sets how many runes each streamed delta holds (default 3).
func WithChunkRunes(n int) Option { return func(s *Server) { s.chunk = max(1, n) } }

// WithChunkDelay sets a pause between streamed deltas (default none).
func WithChunkDelay(d time.Duration) Option { return func(s *Server) { s.delay = d } }

// Server is a running fake API. Its methods are safe for concurrent use.
type Server struct {
	ts    *httptest.Server
	key   string
	chunk int
	delay time.Duration

	mu     sync.Mutex
	answer func(Request) string
	fail   *Failure
	reqs   []Request
}

// NewServer starts a fake API. Its default answer repeats the last user message after "echo: ".
func NewServer(opts ...Option) *Server {
	s := &Server{chunk: 3, answer: func(r Request) string { return "echo: " + r.LastUser() }}
	for _, o := range opts {
		o(s)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's root; any path ending in /chat/completions is served, so URL()+"/v1" is a
// base URL like OpenAI's.
func (s *Server) URL() string { return s.ts.URL }

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// SetAnswer sets what the model answers to a request.
func (s *Server) SetAnswer(fn func(Request) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = fn
}

// SetFailure makes every following request fail as f says; nil restores normal answers.
func (s *Server) SetFailure(f *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		writeError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error")
		return
	}
	if s.key != "" && r.Header.Get("Authorization") != "Bearer "+s.key {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided: "+got+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error")
		return
	}
	req, err := decodeRequest(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "invalid_request_error")
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	answer, fail := s.answer, s.fail
	s.mu.Unlock()

	if fail != nil && fail.Status != http.StatusOK {
		writeError(w, fail.Status, fail.Message, fail.Type)
		return
	}
	text := ""
	if fail == nil {
		text = answer(req)
	} else {
		text = fail.Partial
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-test", "object": "chat.completion", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": text}}},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	event := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	fmt.Fprint(w, ": keep-alive\n\n")
	event(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for text != "" {
		n := 0
		for i := 0; i < s.chunk && n < len(text); i++ {
			_, size := utf8.DecodeRuneInString(text[n:])
			n += size
		}
		event(chunk(map[string]any{"content": text[:n]}, nil))
		text = text[n:]
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
	}
	if fail != nil {
		event(map[string]any{"error": map[string]any{"message": fail.Message, "type": fail.Type}})
		return
	}
	event(chunk(map[string]any{}, "stop"))
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func writeError(w http.ResponseWriter, status int, msg, typ string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func decodeRequest(r io.Reader) (Request, error) {
	var wire struct {
		Model       string   `json:"model"`
		Stream      bool     `json:"stream"`
		MaxTokens   int      `json:"max_tokens"`
		Temperature *float64 `json:"temperature"`
		Messages    []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r).Decode(&wire); err != nil {
		return Request{}, fmt.Errorf("We could not parse the JSON body of your request: %v", err)
	}
	if wire.Model == "" || len(wire.Messages) == 0 {
		return Request{}, fmt.Errorf("you must provide a model and messages")
	}
	req := Request{Model: wire.Model, Stream: wire.Stream, MaxTokens: wire.MaxTokens, Temperature: wire.Temperature}
	for _, m := range wire.Messages {
		msg := Message{Role: m.Role}
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			msg.Content = s
		} else {
			var parts []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				ImageURL struct {
					URL string `json:"url"`
				} `json:"image_url"`
			}
			if err := json.Unmarshal(m.Content, &parts); err != nil {
				return Request{}, fmt.Errorf("invalid content: %v", err)
			}
			for _, p := range parts {
				switch p.Type {
				case "text":
					msg.Content += p.Text
				case "image_url":
					mt, data, err := decodeDataURL(p.ImageURL.URL)
					if err != nil {
						return Request{}, err
					}
					msg.Images = append(msg.Images, data)
					req.ImageTypes = append(req.ImageTypes, mt)
				default:
					return Request{}, fmt.Errorf("invalid content part type %q", p.Type)
				}
			}
		}
		req.Messages = append(req.Messages, msg)
	}
	return req, nil
}

func decodeDataURL(u string) (mediaType string, data []byte, err error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", nil, fmt.Errorf("image_url: not a data: URL")
	}
	mt, b64, ok := strings.Cut(rest, ";base64,")
	if !ok {
		return "", nil, fmt.Errorf("image_url: not base64")
	}
	data, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("image_url: %v", err)
	}
	return mt, data, nil
}
