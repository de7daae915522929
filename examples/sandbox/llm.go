package main

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wxkf/wxkf/kf"
)

// The LLM mode of the demo bot: with OPENAI_BASE_URL and OPENAI_API_KEY set (any OpenAI-compatible
// endpoint; OPENAI_MODEL optional), text that is not a command is answered by the model, through
// the official openai-go SDK.
//
// How the streamed answer becomes WeCom messages (kf.Replier.Stream): completed paragraphs go out
// while the answer is still being generated — the first as soon as there is one, later ones when
// about 1 KB has collected — but only while more than one message of the 5-message quota is left.
// The last message is always kept for the remainder, which is fitted into it (cut with "…" if the
// model wrote more than fits). So the customer sees the start of the answer early, and the answer
// never runs into 95001 halfway.

const (
	llmSystemPrompt = "You are the demo bot of wxkf, a Go SDK for WeCom customer service (企业微信 微信客服). " +
		"You chat with a WeChat customer. Answer in the customer's language, briefly and in plain text: " +
		"no Markdown tables or headings; separate paragraphs with a blank line."
	llmDefaultModel = "gpt-4o-mini"
	llmMemoryTurns  = 8
	typingThrottle  = 150 * time.Millisecond
	typingTailBytes = 600
)

// llmClient is the model the LLM mode asks.
type llmClient struct {
	c     openai.Client
	model string
}

// newLLMClient returns a client of model at baseURL (an OpenAI-compatible API root, such as
// https://api.openai.com/v1).
func newLLMClient(baseURL, apiKey, model string) *llmClient {
	return &llmClient{c: openai.NewClient(option.WithBaseURL(baseURL), option.WithAPIKey(apiKey), option.WithMaxRetries(1)),
		model: model}
}

// llmFromEnv configures the LLM mode from OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL.
func llmFromEnv() (*llmClient, bool) {
	base, key := strings.TrimSpace(os.Getenv("OPENAI_BASE_URL")), os.Getenv("OPENAI_API_KEY")
	if base == "" || key == "" {
		return nil, false
	}
	model := os.Getenv("OPENAI_MODEL")
	if model == "" {
		model = llmDefaultModel
	}
	return newLLMClient(base, key, model), true
}

// llmBot answers through the model, remembering each customer's recent turns.
type llmBot struct {
	c *llmClient

	mu    sync.Mutex
	turns map[string][]openai.ChatCompletionMessageParamUnion // user, assistant, user, …
	order []string                                            // customers, oldest first
}

func newLLMBot(c *llmClient) *llmBot {
	return &llmBot{c: c, turns: map[string][]openai.ChatCompletionMessageParamUnion{}}
}

// Name is the model, shown on the page and in the welcome.
func (l *llmBot) Name() string { return l.c.model }

func (l *llmBot) history(user string) []openai.ChatCompletionMessageParamUnion {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]openai.ChatCompletionMessageParamUnion(nil), l.turns[user]...)
}

// remember keeps the last llmMemoryTurns exchanges of at most maxCustomers customers.
func (l *llmBot) remember(user, question, answer string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, known := l.turns[user]
	if !known {
		l.order = append(l.order, user)
		if len(l.order) > maxCustomers {
			delete(l.turns, l.order[0])
			l.order = l.order[1:]
		}
	}
	h = append(h, openai.UserMessage(question), openai.AssistantMessage(answer))
	l.turns[user] = h[max(0, len(h)-2*llmMemoryTurns):]
}

// answerLLM streams the model's answer to text into replies (see above) and shows the text still
// streaming on the page as a "typing" bubble.
func (b *bot) answerLLM(ctx context.Context, user, text string, r kf.Replier) error {
	l := b.llm
	msgs := append([]openai.ChatCompletionMessageParamUnion{openai.SystemMessage(llmSystemPrompt)}, l.history(user)...)
	msgs = append(msgs, openai.UserMessage(text))

	// The page shows what has streamed in and is not sent yet: sent pieces are cut from the front.
	srv := b.sb.srv
	sentBefore := len(srv.SentTo(srv.OpenKfID(), user))
	seen := sentBefore
	var got []byte
	sentUpTo := 0
	var last time.Time
	show := func(done bool) {
		for _, s := range srv.SentTo(srv.OpenKfID(), user)[seen:] {
			seen++
			if i := strings.Index(string(got[sentUpTo:]), s.Text); s.Text != "" && i >= 0 {
				sentUpTo += i + len(s.Text)
			}
		}
		pending := strings.TrimSpace(string(got[sentUpTo:]))
		if len(pending) > typingTailBytes {
			pending = pending[len(pending)-typingTailBytes:]
			for len(pending) > 0 && !utf8.RuneStart(pending[0]) { // start on a whole character
				pending = pending[1:]
			}
			pending = "…" + pending
		}
		b.sb.hub.typing(typingEvent{User: user, Text: pending, Done: done})
	}
	b.note(user, slog.LevelInfo, "LLM: asking "+l.Name(), "history_messages", len(msgs)-2)
	start := time.Now()
	stream := l.c.c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: l.c.model, Messages: msgs})
	defer stream.Close()
	deltas := func(yield func(string, error) bool) {
		for stream.Next() {
			c := stream.Current()
			if len(c.Choices) == 0 || c.Choices[0].Delta.Content == "" {
				continue
			}
			d := c.Choices[0].Delta.Content
			got = append(got, d...)
			if time.Since(last) >= typingThrottle {
				last = time.Now()
				show(false)
			}
			if !yield(d, nil) {
				return
			}
		}
		if err := stream.Err(); err != nil {
			yield("", err)
		}
	}
	err := r.Stream(ctx, iter.Seq2[string, error](deltas))
	show(true)
	answer := string(got)
	b.note(user, slog.LevelInfo, "LLM: answer streamed", "bytes", len(answer), "messages", seen-sentBefore,
		"seconds", time.Since(start).Round(10*time.Millisecond).Seconds())

	var se *kf.StreamError
	switch {
	case errors.As(err, &se):
		// The model failed (the SDK keeps the API key out of its errors). Stream kept a message of
		// the quota: use it to say so.
		b.note(user, slog.LevelWarn, "LLM: failed", "err", se.Err)
		return r.Text(ctx, "Sorry, the language model did not answer ("+shortErr(se.Err)+"). Type help for the demo commands.")
	case err == nil, errors.Is(err, kf.ErrQuotaExceeded):
		if strings.TrimSpace(answer) != "" {
			l.remember(user, text, answer)
		}
	}
	return err // nil, or a refusal that outcome() shows
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) <= 160 {
		return s
	}
	n := 160
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
