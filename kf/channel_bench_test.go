package kf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wxkf/wxkf/kf/kftest"
)

// BenchmarkChannelLatency pushes 1000 customer messages from 200 customers through a Channel and
// kftest, with 5–20 ms of latency injected into every WeCom API call. Each message gets its own
// callback, paced over about a second. It reports throughput and the latency the SDK adds between
// a message's callback and WeCom accepting its reply: the end-to-end time minus the time spent
// inside the fake WeCom on that message's path (the sync_msg call that returned it and any it had
// to wait for, the session-state lookup and the customer's earlier sends it queued behind, and its
// own send_msg).
func BenchmarkChannelLatency(b *testing.B) {
	const customers, perCustomer = 200, 5
	const total = customers * perCustomer
	var all []time.Duration
	var rates []float64
	for b.Loop() {
		added, rate := runLatencyScenario(b, customers, perCustomer)
		all = append(all, added...)
		rates = append(rates, rate)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "sdk-p50-ms")
	b.ReportMetric(pct(0.99), "sdk-p99-ms")
	b.ReportMetric(pct(1.0), "sdk-max-ms")
	var sum float64
	for _, r := range rates {
		sum += r
	}
	b.ReportMetric(sum/float64(len(rates)), "msgs/s")
	b.ReportMetric(total, "msgs/op")
}

type call struct {
	path       string
	start, end time.Time
	user       string          // touser / external_userid of the request
	clientID   string          // send_msg msgid
	msgIDs     map[string]bool // sync_msg: msgids returned
}

func runLatencyScenario(b *testing.B, customers, perCustomer int) (added []time.Duration, rate float64) {
	srv := kftest.NewServer()
	defer srv.Close()
	// The observer only keeps the records: decoding them happens after the run, so the measuring
	// does not compete for the CPU with what it measures.
	var mu sync.Mutex
	var records []kftest.Record
	cancelObs := srv.Observe(func(r kftest.Record) {
		if r.Kind != kftest.RecordAPI {
			return
		}
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	})
	defer cancelObs()

	ch, err := NewChannel(Config{CorpID: srv.CorpID(), Secret: srv.Secret(), Token: srv.CallbackToken(), EncodingAESKey: srv.EncodingAESKey()},
		WithStateDir(b.TempDir()), WithClientOptions(WithBaseURL(srv.URL())), WithWorkers(64))
	if err != nil {
		b.Fatal(err)
	}
	ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	url := hs.URL + "/wxkf/"
	// Warm up the token and the connection pools before measuring.
	if _, err := ch.Client().AccessToken(context.Background()); err != nil {
		b.Fatal(err)
	}
	srv.SetFaults(kftest.Faults{Latency: 5 * time.Millisecond, LatencyJitter: 15 * time.Millisecond})

	total := customers * perCustomer
	type sentMsg struct {
		id, user string
		callback time.Time
	}
	msgs := make([]sentMsg, 0, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < perCustomer; i++ {
		for c := 0; c < customers; c++ {
			user := fmt.Sprintf("cust%03d", c)
			id := srv.AddText(user, fmt.Sprintf("hello %d", i))
			at := time.Now()
			msgs = append(msgs, sentMsg{id, user, at})
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = srv.Notify(context.Background(), url, srv.OpenKfID())
			}()
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil && len(srv.Sent()) < total {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if n := len(srv.Sent()); n != total {
		b.Fatalf("%d of %d replies; stats %+v", n, total, ch.Stats())
	}
	_ = ch.Shutdown(context.Background())
	rate = float64(total) / elapsed.Seconds()

	mu.Lock()
	defer mu.Unlock()
	calls := make([]call, 0, len(records))
	for _, r := range records {
		calls = append(calls, decodeCall(r))
	}
	byClient := map[string]call{}
	for _, c := range calls {
		if c.path == "/cgi-bin/kf/send_msg" {
			byClient[c.clientID] = c
		}
	}
	for _, m := range msgs {
		send, ok := byClient[clientMsgID(srv.OpenKfID(), m.id, 0)]
		if !ok {
			b.Fatalf("no send for %s", m.id)
		}
		var pull call
		for _, c := range calls {
			if c.msgIDs[m.id] {
				pull = c
				break
			}
		}
		// WeCom time on the path: a sync_msg in progress when the callback came (the loop waits for
		// it), the sync_msg that returned the message, then this customer's calls until its send.
		inside := pull.end.Sub(pull.start)
		for _, c := range calls {
			if c.path == "/cgi-bin/kf/sync_msg" && c.start.Before(m.callback) && c.end.After(m.callback) && c.end.Before(pull.start) {
				inside += c.end.Sub(m.callback)
			}
			if c.user == m.user && c.path != "/cgi-bin/kf/sync_msg" && !c.start.Before(pull.end) && !c.end.After(send.start) {
				inside += c.end.Sub(c.start)
			}
		}
		inside += send.end.Sub(send.start)
		added = append(added, max(send.end.Sub(m.callback)-inside, 0))
	}
	return added, rate
}

func decodeCall(r kftest.Record) call {
	c := call{path: r.Path, start: r.At.Add(-r.Duration), end: r.At}
	var req struct {
		ToUser         string `json:"touser"`
		ExternalUserID string `json:"external_userid"`
		MsgID          string `json:"msgid"`
	}
	_ = json.Unmarshal(r.Request, &req)
	c.user = req.ToUser + req.ExternalUserID
	c.clientID = req.MsgID
	if r.Path == "/cgi-bin/kf/sync_msg" {
		var resp struct {
			MsgList []struct {
				MsgID string `json:"msgid"`
			} `json:"msg_list"`
		}
		_ = json.Unmarshal(r.Response, &resp)
		c.msgIDs = map[string]bool{}
		for _, m := range resp.MsgList {
			c.msgIDs[m.MsgID] = true
		}
	}
	return c
}
