package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wxkf/wxkf/internal/llm"
	"github.com/wxkf/wxkf/kf"
)

// The LLM mode of the demo bot: with OPENAI_BASE_URL and OPENAI_API_KEY set (any OpenAI-compatible
// endpoint; OPENAI_MODEL optional), text that is not a command is answered by the model.
//
// How the streamed answer becomes WeCom messages (llm.ReplyStream): completed paragraphs go out
// while the answer is still being generated — the first as soon as there is one, later ones
// when about 1 KB has collected — but only while more than one message of the 5-message quota
// is left. The last message is always kept for the remainder, which Replier.Text fits into it
// (cut with "…" if the model wrote more than fits). So the customer sees the start of the answer
// early, and the answer never runs into 95001 halfway.

const (
	llmSystemPrompt = "You are the demo bot of wxkf, a Go SDK for WeCom customer service (企业微信 微信客服). " +
		"You chat with a WeChat customer. Answer in the customer's language, briefly and in plain text: " +
		"no Markdown tables or headings; separate paragraphs with a blank line."
	llmMemoryTurns  = 8
	llmMemoryTTL    = 2 * time.Hour
	typingThrottle  = 150 * time.Millisecond
	typingTailBytes = 600
)

// llmBot answers through an OpenAI-compatible chat API, remembering recent turns per customer.
type llmBot struct {
	c   *llm.Client
	mem *llm.Memory
}

func newLLMBot(c *llm.Client) *llmBot {
	mem, err := llm.NewMemory(llmMemoryTurns, maxCustomers, llmMemoryTTL)
	if err != nil {
		panic(err) // constant arguments
	}
	return &llmBot{c: c, mem: mem}
}

// Name is the model, shown on the page and in the welcome.
func (l *llmBot) Name() string { return l.c.Model() }

// answerLLM streams the model's answer to text into replies (see above) and shows the text still
// streaming on the page as a "typing" bubble.
func (b *bot) answerLLM(ctx context.Context, user, text string, r kf.Replier) error {
	l := b.llm
	msgs := append([]llm.Message{{Role: llm.RoleSystem, Content: llmSystemPrompt}}, l.mem.History(user)...)
	q := llm.Message{Role: llm.RoleUser, Content: text}
	msgs = append(msgs, q)

	// The page shows what has streamed in and is not sent yet: sent pieces are cut from the front.
	var mu sync.Mutex
	var got []byte
	sentUpTo := 0
	var last time.Time
	show := func(done bool) {
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
	tap := &sentTap{Replier: r, sent: func(piece string) {
		mu.Lock()
		defer mu.Unlock()
		if i := strings.Index(string(got[sentUpTo:]), piece); i >= 0 {
			sentUpTo += i + len(piece)
		}
		show(false)
	}}
	b.note(user, slog.LevelInfo, "LLM: asking "+l.Name(), "history_messages", len(msgs)-2)
	start := time.Now()
	err := llm.ReplyStream(ctx, tap, func(onDelta func(string)) (string, error) {
		return l.c.Stream(ctx, msgs, func(d string) {
			mu.Lock()
			got = append(got, d...)
			if time.Since(last) >= typingThrottle {
				last = time.Now()
				show(false)
			}
			mu.Unlock()
			onDelta(d)
		})
	})
	mu.Lock()
	show(true)
	answer := string(got)
	mu.Unlock()
	b.note(user, slog.LevelInfo, "LLM: answer streamed", "bytes", len(answer), "seconds", time.Since(start).Round(10*time.Millisecond).Seconds())
	if answer != "" {
		l.mem.AddTurn(user, q, llm.Message{Role: llm.RoleAssistant, Content: answer})
	}

	var re *kf.ReplyError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return err // quota cut or a human took over: outcome() shows it
	case ctx.Err() != nil:
		return err
	}
	// The model failed (the llm package keeps the API key out of its errors). The quota kept a
	// message for the remainder: use it to say so.
	b.note(user, slog.LevelWarn, "LLM: failed", "err", err)
	return r.Text(ctx, "Sorry, the language model did not answer ("+shortErr(err)+"). Type help for the demo commands.")
}

// sentTap tells which texts went out, so the page's "typing" bubble shows only the rest.
type sentTap struct {
	kf.Replier
	sent func(piece string)
}

func (t *sentTap) Text(ctx context.Context, s string) error {
	err := t.Replier.Text(ctx, s)
	if err == nil {
		t.sent(s)
	}
	return err
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

// llmFromEnv configures the LLM mode from OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL.
func llmFromEnv() (*llm.Client, bool) { return llm.FromEnv() }
