package llm

import (
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadStream(t *testing.T) {
	t.Parallel()
	d := func(s string) string {
		return `data: {"choices":[{"index":0,"delta":{"content":"` + s + `"}}]}` + "\n\n"
	}
	cases := []struct {
		name   string
		in     string
		want   string
		deltas int
		err    error
	}{
		{"openai", d("Hel") + d("lo") + "data: [DONE]\n\n", "Hello", 2, nil},
		{"no space after data:", `data:{"choices":[{"delta":{"content":"a"}}]}` + "\ndata:[DONE]\n", "a", 1, nil},
		{"CRLF", strings.ReplaceAll(d("a")+d("b")+"data: [DONE]\n\n", "\n", "\r\n"), "ab", 2, nil},
		{"comments and fields", ": OPENROUTER PROCESSING\n\nevent: message\nid: 7\nretry: 100\n" + d("x") + "data: [DONE]\n", "x", 1, nil},
		{"no blank lines", strings.ReplaceAll(d("a")+d("b"), "\n\n", "\n") + "data: [DONE]\n", "ab", 2, nil},
		{"role chunk and null content", `data: {"choices":[{"delta":{"role":"assistant","content":null}}]}` + "\n" + d("x") + "data: [DONE]\n", "x", 1, nil},
		{"escapes", d(`\u4f60\u597d\n\"q\"`) + "data: [DONE]\n", "你好\n\"q\"", 1, nil},
		{"content parts", `data: {"choices":[{"delta":{"content":[{"type":"text","text":"p"}]}}]}` + "\ndata: [DONE]\n", "p", 1, nil},
		{"other choice ignored", `data: {"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}` + "\ndata: [DONE]\n", "yes", 1, nil},
		{"usage chunk without choices", d("a") + `data: {"choices":[],"usage":{"total_tokens":3}}` + "\ndata: [DONE]\n", "a", 1, nil},
		{"after DONE ignored", d("a") + "data: [DONE]\n" + d("b") + "garbage", "a", 1, nil},
		{"finish without DONE", d("a") + `data: {"choices":[{"delta":{},"finish_reason":"stop"}]}` + "\n", "a", 1, nil},
		{"ended early", d("a") + d("b"), "ab", 2, ErrIncomplete},
		{"empty body", "", "", 0, ErrIncomplete},
		{"malformed", d("a") + "data: {not json\n", "a", 1, ErrMalformed},
		{"bad content", `data: {"choices":[{"delta":{"content":5}}]}` + "\n", "", 0, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			got, err := readStream(strings.NewReader(tc.in), func(string) { n++ })
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.deltas, n)
			if tc.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
}

func TestReadStreamErrorEvent(t *testing.T) {
	t.Parallel()
	c := &Client{key: "sk-zzz"}
	for _, ev := range []string{
		`{"error":{"message":"overloaded sk-zzz","type":"server_error","code":"overloaded"}}`,
		`{"error":"overloaded sk-zzz"}`,
	} {
		got, err := readStream(strings.NewReader(`data: {"choices":[{"delta":{"content":"a"}}]}`+"\ndata: "+ev+"\n"), func(string) {})
		assert.Equal(t, "a", got)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "sk-zzz", "unwrapped, it says nothing")
		err = c.wrap(err)
		var ae *APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, 200, ae.StatusCode)
		assert.Equal(t, "overloaded [REDACTED]", ae.Message)
	}
}

func TestCappedReader(t *testing.T) {
	t.Parallel()
	r := &cappedReader{r: strings.NewReader("abcdef"), left: 6}
	b, err := io.ReadAll(r)
	require.NoError(t, err, "exactly the cap is fine")
	assert.Equal(t, "abcdef", string(b))
	r = &cappedReader{r: strings.NewReader("abcdefg"), left: 6}
	_, err = io.ReadAll(r)
	assert.ErrorIs(t, err, ErrResponseTooLarge)
}

// FuzzReadStream: any stream is read without panic; the text returned is the deltas joined, and
// valid UTF-8 (JSON decoding guarantees it).
func FuzzReadStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"error\":{\"message\":\"x\",\"code\":429}}\n")
	f.Add(": c\nevent: e\ndata:\ndata: [DONE]")
	f.Add("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":[{\"type\":\"text\",\"text\":\"p\"}]},\"finish_reason\":\"stop\"}]}")
	f.Fuzz(func(t *testing.T, in string) {
		var b strings.Builder
		got, err := readStream(strings.NewReader(in), func(d string) { b.WriteString(d) })
		if got != b.String() {
			t.Fatalf("returned %q, deltas %q", got, b.String())
		}
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 %q", got)
		}
		var raw *rawAPIError
		if err != nil && !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrMalformed) &&
			!errors.Is(err, ErrResponseTooLarge) && !errors.As(err, &raw) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzAPIError: any error body becomes an APIError without the key, with a capped one-line message.
func FuzzAPIError(f *testing.F) {
	f.Add(401, []byte(`{"error":{"message":"Incorrect API key provided: sk-fuzzkey","type":"invalid_request_error","code":"invalid_api_key"}}`))
	f.Add(429, []byte(`{"error":"slow down sk-fuzzkey"}`))
	f.Add(500, []byte(`{"message":"x"}`))
	f.Add(502, []byte("<html>\xff\xfe sk-fuzzkey</html>"))
	f.Add(400, []byte(`{"error":{"code":123}}`))
	c := &Client{key: "sk-fuzzkey"}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := c.apiError(status, body)
		for _, s := range []string{e.Message, e.Code, e.Type, e.Error()} {
			if strings.Contains(s, "sk-fuzzkey") {
				t.Fatalf("key in %q", s)
			}
			if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\t") {
				t.Fatalf("not one line of UTF-8: %q", s)
			}
		}
		if len(e.Message) > maxErrorMessage+len("…") || len(e.Code) > 64+len("…") || len(e.Type) > 64+len("…") {
			t.Fatalf("not capped: %d %d %d", len(e.Message), len(e.Code), len(e.Type))
		}
	})
}

func BenchmarkReadStream(b *testing.B) {
	var in strings.Builder
	for range 3000 { // a 9 000-rune answer in 3-rune deltas, as OpenAI streams
		in.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"好的。"},"finish_reason":null}]}` + "\n\n")
	}
	in.WriteString("data: [DONE]\n\n")
	s := in.String()
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readStream(strings.NewReader(s), func(string) {}); err != nil {
			b.Fatal(err)
		}
	}
}

// A line cut by the size cap is reported as too large, not as the server's malformed JSON.
func TestReadStreamCutByCap(t *testing.T) {
	t.Parallel()
	first := `data: {"choices":[{"delta":{"content":"a"}}]}` + "\n\n"
	in := first + `data: {"choices":[{"delta":{"content":"bbbbbbbbbbbbbbbb"}}]}` + "\n\n"
	got, err := readStream(&cappedReader{r: strings.NewReader(in), left: int64(len(first) + 20)}, func(string) {})
	assert.ErrorIs(t, err, ErrResponseTooLarge)
	assert.Equal(t, "a", got)
}
