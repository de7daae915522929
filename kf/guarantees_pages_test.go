package kf

// Pages that used to stop an account for good, and a flood that used to hold every other customer.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/kf/kftest"
)

// Malformed items (no msgid, a numeric, null or over-long msgid, an item that is not an object)
// are skipped and counted; an unknown msgtype is passed on raw; the rest of the page, and
// everything after it, is answered.
func TestMalformedItemsNeverStopAnAccount(t *testing.T) {
	t.Parallel()
	var logs lockedLog
	e := newEnv(t, WithChannelLogger(logs.logger()))
	var mu sync.Mutex
	var raw []string
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.Text == nil {
			mu.Lock()
			raw = append(raw, string(m.MsgType)+":"+string(m.Raw))
			mu.Unlock()
			return r.Text(ctx, "got "+string(m.MsgType))
		}
		return r.Text(ctx, m.Text.Content)
	})
	item := func(msgid any) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"msgid": msgid, "open_kfid": e.srv.OpenKfID(), "external_userid": "bob",
			"send_time": time.Now().Unix(), "origin": 3, "msgtype": "text", "text": map[string]string{"content": "bad"}})
		return b
	}
	e.srv.AddText("bob", "before")
	e.srv.AddRawItem("", json.RawMessage(`{"open_kfid":"x","external_userid":"bob","origin":3,"msgtype":"text","text":{"content":"no id"}}`))
	e.srv.AddRawItem("", item(12345))
	e.srv.AddRawItem("", item(nil))
	e.srv.AddRawItem("", item(strings.Repeat("m", 1025)))
	e.srv.AddRawItem("", json.RawMessage(`"not an object"`))
	e.srv.AddRawItem("", json.RawMessage(`[1,2,3]`))
	e.srv.AddMessage(kftest.Message{ExternalUserID: "bob", MsgType: "meeting", Body: map[string]any{"meeting_id": "m1"}})
	e.srv.AddMessage(kftest.Message{ExternalUserID: "bob", MsgType: "meeting", Body: map[string]any{"meeting_id": "m2"}})
	e.srv.AddText("bob", "after")
	e.notify()
	e.waitTexts("bob", []string{"before", "got meeting", "got meeting", "after"}, 5*time.Second)
	e.settle()
	assert.EqualValues(t, 6, e.ch.Stats().Malformed)
	// An unknown msgtype is not malformed: it reaches the handler with Raw, is counted, and its type
	// is logged once.
	assert.EqualValues(t, 2, e.ch.Stats().UnknownTypes)
	assert.Equal(t, 1, strings.Count(logs.String(), "msgtype=meeting"), "the unknown type is logged once:\n%s", logs.String())
	mu.Lock()
	assert.Equal(t, []string{`meeting:{"meeting_id":"m1"}`, `meeting:{"meeting_id":"m2"}`}, raw)
	mu.Unlock()

	// The account keeps going: later messages are answered too, and the bad items are not seen again.
	e.srv.AddText("bob", "later")
	e.notify()
	e.waitTexts("bob", []string{"before", "got meeting", "got meeting", "after", "later"}, 5*time.Second)
	e.settle()
	assert.EqualValues(t, 6, e.ch.Stats().Malformed)
	assert.EqualValues(t, 2, e.ch.Stats().UnknownTypes)
}

// A legitimately large page (1000 texts of 9 KB: a 9 MB answer, over the 8 MB response cap) is
// pulled again with a smaller limit, and every message is answered.
func TestLargePageShrinksLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithWorkers(64))
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		return r.Text(ctx, fmt.Sprintf("ok %d", len(m.Text.Content)))
	})
	big := strings.Repeat("长", 3000) // 9000 bytes
	const customers, each = 100, 10
	for i := range customers * each {
		e.srv.AddText(fmt.Sprintf("u%d", i%customers), big)
	}
	e.notify()
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == customers*each }, 60*time.Second, 20*time.Millisecond,
		"stats %+v", e.ch.Stats())
	e.settle()
	s := e.ch.Stats()
	assert.Positive(t, s.PageShrinks)
	for i := range customers {
		// All ten arrived at once: WeCom allows five replies after the latest.
		assert.Len(t, e.srv.SentTo(e.srv.OpenKfID(), fmt.Sprintf("u%d", i)), 5)
	}
}

// One customer's flood (3000 quick messages, 50 ms handlers, 30 ms sends) does not delay another
// customer: their one message is answered within 5 s while the flood is still being worked through.
func TestFloodDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.SetFaults(kftest.Faults{Latency: 30 * time.Millisecond, Paths: []string{pathSend}})
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		time.Sleep(50 * time.Millisecond)
		return r.Text(ctx, m.Text.Content)
	})
	for i := range 3000 {
		e.srv.AddText("flood", fmt.Sprintf("f%d", i))
	}
	e.notify()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	e.srv.AddText("calm", "hello")
	e.notify()
	e.waitTexts("calm", []string{"hello"}, 5*time.Second)
	t.Logf("answered in %s", time.Since(start))
	assert.Less(t, e.ch.Stats().Handled, int64(1000), "the flood is still being worked through")
	e.ch.crash() // no need to drain the flood
}

// With a small memory budget, a flood is deferred rather than held: the queued bytes stay within
// the budget, every message is still handled once and in order, and the other customer is not
// held up.
func TestQueueMemoryBounded(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	e := newEnv(t, WithQueueBytes(budget))
	var mu sync.Mutex
	var seen []string
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		if m.ExternalUserID == "flood" {
			mu.Lock()
			seen = append(seen, m.Text.Content)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			return nil // WeCom allows five replies to a flood anyway: handling is what is checked
		}
		return r.Text(ctx, m.Text.Content)
	})
	var want []string
	for i := range 600 {
		text := fmt.Sprintf("f%03d %s", i, strings.Repeat("z", 200))
		want = append(want, text)
		e.srv.AddText("flood", text)
	}
	e.srv.AddText("calm", "hello")
	e.notify()
	e.waitTexts("calm", []string{"hello"}, 5*time.Second)
	require.Eventually(t, func() bool { return e.ch.Stats().Handled == 601 }, 60*time.Second, 10*time.Millisecond, "stats %+v", e.ch.Stats())
	e.settle()
	mu.Lock()
	assert.Equal(t, want, seen, "every message of the flood handled once, in order")
	mu.Unlock()
	s := e.ch.Stats()
	assert.Positive(t, s.Deferred)
	assert.Positive(t, s.Rewinds)
	assert.LessOrEqual(t, s.QueuedPeak, int64(budget), "queued bytes stay within the budget")
	t.Logf("deferred %d, rewinds %d, peak %d bytes, pulls %d", s.Deferred, s.Rewinds, s.QueuedPeak, s.Pulls)
}

// has_more with an unchanged cursor and an empty page is backed off, not spun on.
func TestUnchangedCursorBacksOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ch.OnMessage(echo)
	e.srv.AddText("cat", "one")
	e.srv.SetFaults(kftest.Faults{EmptyPageRate: 1})
	e.notify()
	time.Sleep(time.Second)
	calls := e.srv.Calls("/cgi-bin/kf/sync_msg")
	assert.Less(t, calls, 60, "sync_msg calls in a second of empty pages (backoff 5–50 ms)")
	e.srv.SetFaults(kftest.Faults{})
	e.waitTexts("cat", []string{"one"}, 5*time.Second)
	assert.Positive(t, e.ch.Stats().EmptyPages)
}

// A flood of customer texts while replies go out, several in the same second as the customer's
// messages, never earns a 95001: an ambiguous send counts against the newer window.
func TestQuotaFloodNever95001(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithWorkers(4))
	var handled atomic.Int32
	e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		handled.Add(1)
		// Two messages per answer, so the windows fill up.
		return r.Text(ctx, strings.Repeat("答", 700)+m.Text.Content)
	})
	for i := range 300 {
		e.srv.AddText("dora", fmt.Sprintf(" %d", i))
		if i%7 == 0 {
			e.notify()
			time.Sleep(time.Duration(i%5) * 3 * time.Millisecond)
		}
	}
	e.notify()
	require.Eventually(t, func() bool { return handled.Load() == 300 }, 30*time.Second, 10*time.Millisecond)
	e.settle()
	for _, rej := range e.srv.Rejected() {
		assert.NotEqual(t, 95001, rej.Code, "WeCom refused a send over the quota: %+v", rej)
	}
	assert.Positive(t, len(e.srv.SentTo(e.srv.OpenKfID(), "dora")))
}
