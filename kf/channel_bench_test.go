package kf

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wxkf/wxkf/kf/kftest"
)

// BenchmarkChannelLatency pushes 1000 customer messages from 200 customers through a Channel and
// kftest, with 5–20 ms of latency injected into every WeCom API call. Each message gets its own
// callback, paced over about a second. It reports throughput and the latency the SDK adds between
// a message's callback and WeCom accepting its reply: the end-to-end time minus the time spent
// inside the fake WeCom on that message's path (the sync_msg call that returned it and any it had
// to wait for, the session-state lookup and the customer's earlier sends it queued behind, and its
// own send_msg).
//
// "own-process" runs the Channel in a child process, as it is deployed, so the fake WeCom and the
// load generator (encrypting a callback per message) do not share its heap and garbage
// collector; "in-process" runs all three in one process. Both use the global OpenTelemetry
// providers, which record nothing; the "-otel" variants install the OpenTelemetry SDK (every
// metric aggregated, every span sampled and batched to an exporter that drops them), to measure
// what recording costs.
func BenchmarkChannelLatency(b *testing.B) {
	b.Run("own-process", func(b *testing.B) { benchLatency(b, startChildBot(false)) })
	b.Run("in-process", func(b *testing.B) { benchLatency(b, startInProcessBot(false)) })
	b.Run("own-process-otel", func(b *testing.B) { benchLatency(b, startChildBot(true)) })
	b.Run("in-process-otel", func(b *testing.B) { benchLatency(b, startInProcessBot(true)) })
}

func benchLatency(b *testing.B, start botStarter) {
	const customers, perCustomer = 200, 5
	const total = customers * perCustomer
	var all []time.Duration
	var rates []float64
	for b.Loop() {
		added, rate := runLatencyScenario(b, start, customers, perCustomer)
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

// botStarter starts the echo bot against srv and returns its callback URL and a stop function.
type botStarter func(b *testing.B, srv *kftest.Server) (url string, stop func())

// benchBotConfig is what the child process needs to run the bot.
type benchBotConfig struct {
	Cfg     Config
	BaseURL string
	Dir     string
	OTel    bool // install the OpenTelemetry SDK
}

func newBenchBot(c benchBotConfig) (*Channel, func(), error) {
	// The offered load, 1000 messages in about a second, is six times WeCom's ceiling of sends: the
	// default limiter would queue them for seconds. This measures the SDK's own latency, so the
	// limiter does not throttle (it still pauses after a 45009); BenchmarkRateLimiterWait measures
	// its cost per call.
	noCeilings, err := NewRateLimiter(WithRateCeilings(""), WithIPRateCeilings())
	if err != nil {
		return nil, nil, err
	}
	opts := []ChannelOption{WithStateDir(c.Dir), WithClientOptions(WithBaseURL(c.BaseURL), WithRateLimiter(noCeilings)), WithWorkers(64)}
	stopSDK := func() {}
	if c.OTel {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
		opts = append(opts, WithMeterProvider(mp), WithTracerProvider(tp))
		stopSDK = func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		}
	}
	ch, err := NewChannel(c.Cfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
	// Warm up the token before measuring.
	if _, err := ch.Client().AccessToken(context.Background()); err != nil {
		return nil, nil, err
	}
	return ch, stopSDK, nil
}

// discardSpans is a span exporter that drops what it gets.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

func benchConfig(b *testing.B, srv *kftest.Server, otel bool) benchBotConfig {
	return benchBotConfig{
		Cfg:     kftestConfig(srv),
		BaseURL: srv.URL(), Dir: b.TempDir(), OTel: otel,
	}
}

func startInProcessBot(otel bool) botStarter {
	return func(b *testing.B, srv *kftest.Server) (string, func()) {
		ch, stopSDK, err := newBenchBot(benchConfig(b, srv, otel))
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/wxkf/", ch)
		hs := httptest.NewServer(mux)
		return hs.URL + "/wxkf/", func() {
			_ = ch.Shutdown(context.Background())
			stopSDK()
			hs.Close()
		}
	}
}

// childEnv carries the child's configuration; TestMain runs the child when it is set.
const childEnv = "WXKF_BENCH_CHILD"

func startChildBot(otel bool) botStarter {
	return func(b *testing.B, srv *kftest.Server) (string, func()) {
		cfg, _ := json.Marshal(benchConfig(b, srv, otel))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "LISTEN ") {
			_ = cmd.Process.Kill()
			b.Fatalf("bench child: %q %v", line, err)
		}
		return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "LISTEN ")) + "/wxkf/", func() {
			_ = stdin.Close() // the child shuts down when its stdin closes
			_ = cmd.Wait()
		}
	}
}

// runBenchChild is the child process of startChildBot: the echo bot until stdin closes.
func runBenchChild(cfgJSON string) int {
	var c benchBotConfig
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	ch, stopSDK, err := newBenchBot(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	defer stopSDK()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = ch.Shutdown(context.Background())
	_ = hs.Close()
	return 0
}

type call struct {
	path       string
	start, end time.Time
	user       string          // touser / external_userid of the request
	clientID   string          // send_msg msgid
	msgIDs     map[string]bool // sync_msg: msgids returned
}

func runLatencyScenario(b *testing.B, start botStarter, customers, perCustomer int) (added []time.Duration, rate float64) {
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
	url, stop := start(b, srv)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	srv.SetFaults(kftest.Faults{Latency: 5 * time.Millisecond, LatencyJitter: 15 * time.Millisecond})

	total := customers * perCustomer
	type sentMsg struct {
		id, user string
		callback time.Time
	}
	msgs := make([]sentMsg, 0, total)
	var wg sync.WaitGroup
	begin := time.Now()
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
	if _, err := srv.WaitSent(ctx, total); err != nil {
		b.Fatalf("%d of %d replies: %v", len(srv.Sent()), total, err)
	}
	elapsed := time.Since(begin)
	stop()
	stopped = true
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
		// A pull already running when the callback came may return the message: only its rest counts.
		inside := pull.end.Sub(later(pull.start, m.callback))
		for _, c := range calls {
			if c.path == "/cgi-bin/kf/sync_msg" && c.start.Before(m.callback) && c.end.After(m.callback) && !c.end.After(pull.start) {
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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
