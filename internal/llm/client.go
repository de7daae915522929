package llm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Roles of a chat message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Defaults and caps.
const (
	// DefaultModel is the model FromEnv uses when OPENAI_MODEL is unset.
	DefaultModel = "gpt-4o-mini"
	// DefaultTimeout bounds one call, from the request until the last byte of the answer
	// (WithTimeout changes it).
	DefaultTimeout = 2 * time.Minute
	// MaxResponseBytes caps what one call reads from the API: every byte of a streamed answer, or
	// a whole JSON body. More is ErrResponseTooLarge.
	MaxResponseBytes = 8 << 20
	// MaxLineBytes caps one line of a server-sent event stream.
	MaxLineBytes = 1 << 20
	// MaxImageBytes caps one image passed to a vision model (OpenAI accepts up to 20 MB).
	MaxImageBytes = 20 << 20

	maxErrorBody    = 64 << 10 // what is read of a non-200 answer
	maxErrorMessage = 512      // what an APIError keeps of the API's message
)

// Sentinel errors, usable with errors.Is.
var (
	// ErrResponseTooLarge: the answer exceeded MaxResponseBytes, or one SSE line MaxLineBytes.
	ErrResponseTooLarge = errors.New("llm: response too large")
	// ErrIncomplete: the stream ended before "data: [DONE]" and before any finish_reason.
	ErrIncomplete = errors.New("llm: stream ended early")
	// ErrMalformed: the API answered something that is not the chat completion format.
	ErrMalformed = errors.New("llm: malformed response")
	// ErrUnsupportedImage: an image is not JPEG, PNG, GIF or WebP, or is larger than MaxImageBytes.
	ErrUnsupportedImage = errors.New("llm: unsupported image")
)

// Message is one chat message. Images (optional, for vision models) are sent with Content as
// content parts, each a data: URL (JPEG, PNG, GIF or WebP, at most MaxImageBytes each).
type Message struct {
	Role    string
	Content string
	Images  [][]byte
}

// APIError is an error answer of the API: its HTTP status and error message. It never holds the
// API key: the key is removed from the message, which is also cut to 512 bytes.
type APIError struct {
	StatusCode int    // HTTP status; 200 for an error sent inside a stream
	Type       string // error.type, if given
	Code       string // error.code, if given
	Message    string // error.message (or the start of the body when it was not JSON)
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("llm: API error (HTTP %d", e.StatusCode)
	if e.Code != "" {
		s += ", code " + e.Code
	} else if e.Type != "" {
		s += ", " + e.Type
	}
	s += ")"
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Client calls one model of an OpenAI-compatible chat completion API. It is safe for concurrent
// use. Its String method never shows the API key.
type Client struct {
	endpoint    string // {base}/chat/completions
	key         string
	model       string
	hc          *http.Client
	timeout     time.Duration
	maxTokens   int
	temperature *float64
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient sets the HTTP client (default: a client of its own with no timeout of its own;
// WithTimeout bounds each call). It is used as given, never modified.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("llm: WithHTTPClient(nil)")
		}
		c.hc = hc
		return nil
	}
}

// WithTimeout bounds each call, from the request until the last byte of the answer (default
// DefaultTimeout, 2 min).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("llm: WithTimeout(%s): want > 0", d)
		}
		c.timeout = d
		return nil
	}
}

// WithMaxTokens sets max_tokens, the longest answer the model may give (default: the API's).
func WithMaxTokens(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("llm: WithMaxTokens(%d): want ≥ 1", n)
		}
		c.maxTokens = n
		return nil
	}
}

// WithTemperature sets the sampling temperature, 0..2 (default: the API's).
func WithTemperature(t float64) Option {
	return func(c *Client) error {
		if !(t >= 0 && t <= 2) {
			return fmt.Errorf("llm: WithTemperature(%v): want 0..2", t)
		}
		c.temperature = &t
		return nil
	}
}

// New returns a client of model at baseURL, the API root that /chat/completions is appended to
// (e.g. https://api.openai.com/v1; a URL that already ends in /chat/completions is used as it is;
// a query such as ?api-version=… is kept). apiKey is sent as a
// Bearer token; it may be empty for local servers that want none. Nothing is requested here.
func New(baseURL, apiKey, model string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llm: base URL %q: want http(s)://host/path", redactURL(baseURL))
	}
	if u.User != nil {
		return nil, errors.New("llm: base URL: credentials in the URL are not supported; use the API key")
	}
	u.Fragment = ""
	for _, r := range apiKey {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("llm: API key: contains white space or control characters")
		}
	}
	if strings.TrimSpace(model) == "" {
		return nil, errors.New("llm: model is empty")
	}
	if !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/chat/completions") {
		u = u.JoinPath("chat/completions") // the usual case: the API root was given
	}
	c := &Client{
		endpoint: u.String(),
		key:      apiKey,
		model:    model,
		timeout:  DefaultTimeout,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	return c, nil
}

// redactURL keeps what identifies a URL in an error but not its query or user info, where a
// secret may hide.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// FromEnv returns a client configured from the environment: OPENAI_BASE_URL (e.g.
// https://api.openai.com/v1), OPENAI_API_KEY and OPENAI_MODEL (default DefaultModel). It reports
// false when the base URL or the key is missing or invalid.
func FromEnv(opts ...Option) (*Client, bool) {
	base, key := os.Getenv("OPENAI_BASE_URL"), os.Getenv("OPENAI_API_KEY")
	if strings.TrimSpace(base) == "" || key == "" {
		return nil, false
	}
	model := os.Getenv("OPENAI_MODEL")
	if strings.TrimSpace(model) == "" {
		model = DefaultModel
	}
	c, err := New(base, key, model, opts...)
	if err != nil {
		return nil, false
	}
	return c, true
}

// Model returns the model the client asks for.
func (c *Client) Model() string { return c.model }

// String describes the client without its API key.
func (c *Client) String() string { return "llm.Client{" + c.endpoint + ", " + c.model + "}" }

// GoString is String, so %#v does not print the key either.
func (c *Client) GoString() string { return c.String() }

// Stream asks for a chat completion of msgs, streamed ("stream": true): onDelta (may be nil) gets
// each piece of the answer's text as it arrives, and the whole text is returned at the end. On
// an error, the text received so far is returned with it. A server that ignores "stream" and
// answers one JSON completion is accepted too (onDelta then gets the whole text once).
func (c *Client) Stream(ctx context.Context, msgs []Message, onDelta func(string)) (string, error) {
	if onDelta == nil {
		onDelta = func(string) {}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.post(ctx, msgs, true)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body := &cappedReader{r: resp.Body, left: MaxResponseBytes}
	if isJSON(resp.Header.Get("Content-Type")) {
		text, err := c.decodeCompletion(body)
		if err != nil {
			return "", err
		}
		if text != "" {
			onDelta(text)
		}
		return text, nil
	}
	text, err := readStream(body, onDelta)
	if err != nil {
		return text, c.wrap(err)
	}
	return text, nil
}

// Complete asks for a chat completion of msgs and returns the answer's text.
func (c *Client) Complete(ctx context.Context, msgs []Message) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.post(ctx, msgs, false)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return c.decodeCompletion(&cappedReader{r: resp.Body, left: MaxResponseBytes})
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

// Wire format of a request.
type (
	chatRequest struct {
		Model       string        `json:"model"`
		Messages    []wireMessage `json:"messages"`
		Stream      bool          `json:"stream,omitempty"`
		MaxTokens   int           `json:"max_tokens,omitempty"`
		Temperature *float64      `json:"temperature,omitempty"`
	}
	wireMessage struct {
		Role    string `json:"role"`
		Content any    `json:"content"` // a string, or []contentPart with images
	}
	contentPart struct {
		Type     string    `json:"type"`
		Text     string    `json:"text,omitempty"`
		ImageURL *imageURL `json:"image_url,omitempty"`
	}
	imageURL struct {
		URL string `json:"url"`
	}
)

// encodeRequest builds the JSON body of a chat completion request.
func (c *Client) encodeRequest(msgs []Message, stream bool) ([]byte, error) {
	if len(msgs) == 0 {
		return nil, errors.New("llm: no messages")
	}
	req := chatRequest{Model: c.model, Stream: stream, MaxTokens: c.maxTokens, Temperature: c.temperature,
		Messages: make([]wireMessage, len(msgs))}
	for i, m := range msgs {
		if m.Role == "" {
			return nil, fmt.Errorf("llm: message %d has no role", i)
		}
		wm := wireMessage{Role: m.Role, Content: m.Content}
		if len(m.Images) > 0 {
			parts := make([]contentPart, 0, len(m.Images)+1)
			if m.Content != "" {
				parts = append(parts, contentPart{Type: "text", Text: m.Content})
			}
			for j, img := range m.Images {
				u, err := dataURL(img)
				if err != nil {
					return nil, fmt.Errorf("llm: message %d, image %d: %w", i, j, err)
				}
				parts = append(parts, contentPart{Type: "image_url", ImageURL: &imageURL{URL: u}})
			}
			wm.Content = parts
		}
		req.Messages[i] = wm
	}
	return json.Marshal(req)
}

// dataURL encodes an image as a data: URL, the way vision models take inline images.
func dataURL(img []byte) (string, error) {
	if len(img) > MaxImageBytes {
		return "", fmt.Errorf("%w: %d bytes, more than %d", ErrUnsupportedImage, len(img), MaxImageBytes)
	}
	ct := http.DetectContentType(img)
	switch ct {
	case "image/jpeg", "image/png", "image/gif", "image/webp":
	default:
		return "", fmt.Errorf("%w: %s", ErrUnsupportedImage, ct)
	}
	var b strings.Builder
	b.Grow(len("data:;base64,") + len(ct) + base64.StdEncoding.EncodedLen(len(img)))
	b.WriteString("data:" + ct + ";base64,")
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	_, _ = enc.Write(img)
	_ = enc.Close()
	return b.String(), nil
}

// post sends the request and returns a 200 response; any other status is an *APIError.
func (c *Client) post(ctx context.Context, msgs []Message, stream bool) (*http.Response, error) {
	body, err := c.encodeRequest(msgs, stream)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, c.wrap(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.wrap(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, c.apiError(resp.StatusCode, data)
	}
	return resp, nil
}

// wireError is the "error" object of an OpenAI-style answer. Code is a string or a number.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

func (c *Client) fromWire(status int, w *wireError) *APIError {
	e := &APIError{StatusCode: status, Type: c.clean(w.Type, 64), Message: c.clean(w.Message, maxErrorMessage)}
	if code := bytes.TrimSpace(w.Code); len(code) > 0 && !bytes.Equal(code, []byte("null")) {
		var s string
		if json.Unmarshal(code, &s) != nil {
			s = string(code)
		}
		e.Code = c.clean(s, 64)
	}
	return e
}

// apiError reads an error answer: OpenAI's {"error": {...}}, {"error": "..."}, {"message": "..."},
// or any other body, of which the start becomes the message.
func (c *Client) apiError(status int, body []byte) *APIError {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		var we wireError
		var s string
		switch {
		case json.Unmarshal(v.Error, &we) == nil && (we.Message != "" || we.Type != "" || len(we.Code) > 0):
			return c.fromWire(status, &we)
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return &APIError{StatusCode: status, Message: c.clean(s, maxErrorMessage)}
		case v.Message != "":
			return &APIError{StatusCode: status, Message: c.clean(v.Message, maxErrorMessage)}
		}
	}
	return &APIError{StatusCode: status, Message: c.clean(string(body), 200)}
}

// clean makes s fit for an error: no API key, valid UTF-8, one line, at most n bytes.
func (c *Client) clean(s string, n int) string {
	s = c.redact(strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		cut := n
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redact removes the API key from s.
func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[REDACTED]")
}

// wrap returns err with the API key removed from its message; errors.Is and errors.As still see
// err (which, built by net/http or this package, does not hold the key: it is sent only in a
// header). *APIError values are already clean and returned as they are.
func (c *Client) wrap(err error) error {
	var ae *APIError
	if err == nil || errors.As(err, &ae) {
		return err
	}
	var raw *rawAPIError
	if errors.As(err, &raw) {
		return c.fromWire(raw.status, &raw.w)
	}
	msg := err.Error()
	if red := c.redact(msg); red != msg || !strings.HasPrefix(msg, "llm: ") {
		return &cleanError{msg: "llm: " + strings.TrimPrefix(red, "llm: "), err: err}
	}
	return err
}

type cleanError struct {
	msg string
	err error
}

func (e *cleanError) Error() string { return e.msg }
func (e *cleanError) Unwrap() error { return e.err }

// decodeCompletion reads a non-streamed chat completion and returns choices[0].message.content.
func (c *Client) decodeCompletion(r io.Reader) (string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", c.wrap(err)
	}
	var v struct {
		Choices []struct {
			Message struct {
				Content json.RawMessage `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Error *wireError `json:"error"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v.Error != nil {
		return "", c.fromWire(http.StatusOK, v.Error)
	}
	if len(v.Choices) == 0 {
		return "", fmt.Errorf("%w: no choices", ErrMalformed)
	}
	return contentText(v.Choices[0].Message.Content)
}

// contentText reads a message content: a string, null, or an array of parts of which the text
// parts are joined.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("%w: message content: %v", ErrMalformed, err)
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" || p.Type == "" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

// cappedReader reads at most left bytes and then fails with ErrResponseTooLarge.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Is there more? One byte tells.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, MaxResponseBytes)
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
