package kf

// Only the lease holder acts, and every write is fenced: a replica paused past its lease, a Redis
// pause longer than the lease, and a replica that stalls in the middle of a cursor save.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

// replicaEnv carries a replica child's configuration; TestMain runs the child when it is set.
const replicaEnv = "WXKF_REPLICA_CHILD"

// replicaConfig is what a replica child process needs.
type replicaConfig struct {
	Cfg       Config
	BaseURL   string
	RedisAddr string
	Prefix    string
	LeaseTTL  time.Duration
	Workers   int
	Delay     time.Duration // each handler takes this long (a model call)
}

// sendAttempt is one send_msg call of a replica child, by the wall clock. A send is in flight from
// the moment it leaves until its outcome is recorded: WeCom's answer read (End) and, for an accepted
// send, its mark written to the reply record (Recorded).
type sendAttempt struct {
	ID       string // the client msgid
	Start    int64  // unix ns
	End      int64  // 0: never returned
	Recorded int64  // 0: never marked sent in the reply record
}

// attemptLog records the replica's send_msg calls (as a RoundTripper) and when each accepted send is
// marked in a reply record (as a wrapper of the store's leases).
type attemptLog struct {
	mu  sync.Mutex
	all []*sendAttempt
	rt  http.RoundTripper
}

func (l *attemptLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != pathSend {
		return l.rt.RoundTrip(r)
	}
	var body struct {
		MsgID string `json:"msgid"`
	}
	if r.GetBody != nil {
		if rc, err := r.GetBody(); err == nil {
			_ = json.NewDecoder(rc).Decode(&body)
			rc.Close()
		}
	}
	a := &sendAttempt{ID: body.MsgID, Start: time.Now().UnixNano()}
	l.mu.Lock()
	l.all = append(l.all, a)
	l.mu.Unlock()
	resp, err := l.rt.RoundTrip(r)
	l.mu.Lock()
	a.End = time.Now().UnixNano()
	l.mu.Unlock()
	return resp, err
}

// recorded notes the parts a reply record marks sent.
func (l *attemptLog) recorded(rec []byte) {
	var r replyRecord
	if json.Unmarshal(rec, &r) != nil {
		return
	}
	now := time.Now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range r.Calls {
		for _, p := range c.Parts {
			if !p.Sent {
				continue
			}
			for _, a := range l.all {
				if a.ID == p.ID && a.Recorded == 0 {
					a.Recorded = now
				}
			}
		}
	}
}

// loggedLease's PutReply tells the attempt log what was recorded.
type loggedLease struct {
	cursor.Lease
	log *attemptLog
}

// MarkDone records the outcome of every send of the messages it marks.
func (l loggedLease) MarkDone(ctx context.Context, msgIDs ...string) error {
	err := l.Lease.MarkDone(ctx, msgIDs...)
	if err == nil {
		now := time.Now().UnixNano()
		l.log.mu.Lock()
		for _, m := range msgIDs {
			for i := range quotaPerMessage * 2 {
				id := clientMsgID(l.Key(), m, i)
				for _, a := range l.log.all {
					if a.ID == id && a.Recorded == 0 {
						a.Recorded = now
					}
				}
			}
		}
		l.log.mu.Unlock()
	}
	return err
}

func (l loggedLease) PutReply(ctx context.Context, msgID string, rec []byte) error {
	err := l.Lease.PutReply(ctx, msgID, rec)
	if err == nil {
		l.log.recorded(rec)
	}
	return err
}

// runReplicaChild is the replica child: an echo bot on Redis until stdin closes; then it prints its
// send attempts as one JSON line.
func runReplicaChild(cfgJSON string) int {
	var c replicaConfig
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		fmt.Fprintln(os.Stderr, "replica child:", err)
		return 2
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: c.RedisAddr})
	defer rdb.Close()
	log := &attemptLog{rt: http.DefaultTransport.(*http.Transport).Clone()}
	ch, err := NewChannel(c.Cfg, WithStores(wrappedLeases{redis.New(rdb, redis.WithPrefix(c.Prefix)), func(l cursor.Lease) cursor.Lease { return loggedLease{l, log} }}), WithLeaseTTL(c.LeaseTTL),
		WithWorkers(c.Workers), WithClientOptions(WithBaseURL(c.BaseURL), WithHTTPClient(&http.Client{Transport: log})),
		WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond), withBackoff(5*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica child:", err)
		return 2
	}
	ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
		select {
		case <-time.After(c.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		return r.Text(ctx, m.Text.Content)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica child:", err)
		return 2
	}
	mux := http.NewServeMux()
	mux.Handle("/wxkf/", ch)
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("LISTEN %s\n", ln.Addr())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until stdin closes
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ch.Shutdown(ctx)
	_ = hs.Close()
	log.mu.Lock()
	b, _ := json.Marshal(log.all)
	log.mu.Unlock()
	fmt.Printf("SENDS %s\n", b)
	return 0
}

// replica is a running replica child.
type replica struct {
	cmd   *exec.Cmd
	url   string
	stdin interface{ Close() error }
	out   *bufio.Reader
}

func startReplica(t *testing.T, c replicaConfig) *replica {
	cfg, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(cfg))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "LISTEN "), line)
	r := &replica{cmd: cmd, stdin: stdin, out: out,
		url: "http://" + strings.TrimSpace(strings.TrimPrefix(line, "LISTEN ")) + "/wxkf/"}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return r
}

// stop ends the replica and returns its send attempts.
func (r *replica) stop(t *testing.T) []sendAttempt {
	require.NoError(t, r.stdin.Close())
	for {
		line, err := r.out.ReadString('\n')
		require.NoError(t, err, "replica output")
		if rest, ok := strings.CutPrefix(line, "SENDS "); ok {
			var all []sendAttempt
			require.NoError(t, json.Unmarshal([]byte(rest), &all))
			require.NoError(t, r.cmd.Wait())
			return all
		}
	}
}

// duplicateRejections counts sends kftest refused because their client msgid was used already.
func duplicateRejections(srv *kftest.Server) int {
	n := 0
	for _, rej := range srv.Rejected() {
		if rej.Code == duplicateMsgIDCode && strings.Contains(rej.Msg, "duplicated") {
			n++
		}
	}
	return n
}

// checkExactlyOnce asserts that each customer got each of their texts once, in order.
func checkExactlyOnce(t *testing.T, srv *kftest.Server, want map[string][]string) {
	t.Helper()
	for u, w := range want {
		var got []string
		for _, s := range srv.SentTo(srv.OpenKfID(), u) {
			got = append(got, s.Text)
		}
		assert.Equal(t, w, got, "customer %s: every message once, in order", u)
	}
}

// Two replicas on one Redis; one is frozen (SIGSTOP) in the middle of its work for longer than the
// lease, the other takes over, then the frozen one resumes. No reply is accepted twice, no
// customer's replies are out of order, and the duplicate send attempts are no more than the sends
// the frozen replica had in flight when it was frozen (sent, and not yet known to be accepted: its answer
// not read, or its acceptance not yet written to the reply record).
func TestPausedReplicaNoDuplicates(t *testing.T) {
	t.Parallel()
	addr, _, _ := redistest.Start(t)
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	cfg := replicaConfig{
		Cfg:     kftestConfig(srv),
		BaseURL: srv.URL(), RedisAddr: addr, Prefix: "frozen:", LeaseTTL: time.Second, Workers: 4, Delay: 40 * time.Millisecond,
	}
	a, b := startReplica(t, cfg), startReplica(t, cfg)
	want := map[string][]string{}
	for i := range 12 {
		u := fmt.Sprintf("p%d", i%3)
		text := fmt.Sprintf("%s-%d", u, i)
		want[u] = append(want[u], text)
		srv.AddText(u, text)
	}
	ctx := context.Background()
	require.NoError(t, srv.Notify(ctx, a.url, srv.OpenKfID()))
	require.Eventually(t, func() bool { return len(srv.Sent()) >= 3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGSTOP))
	frozeAt := time.Now().UnixNano()
	time.Sleep(1500 * time.Millisecond) // past the lease
	require.NoError(t, srv.Notify(ctx, b.url, srv.OpenKfID()))
	require.Eventually(t, func() bool { return len(srv.Sent()) >= 12 }, 15*time.Second, 5*time.Millisecond,
		"sent %d", len(srv.Sent()))
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGCONT))
	time.Sleep(time.Second) // the resumed replica must not act any more
	sendsA := a.stop(t)
	b.stop(t)

	checkExactlyOnce(t, srv, want)
	inFlight := 0 // sent before the freeze, outcome not recorded before it
	for _, s := range sendsA {
		if s.Start < frozeAt && (s.End == 0 || s.End > frozeAt || s.Recorded == 0 || s.Recorded > frozeAt) {
			inFlight++
		}
	}
	dups := duplicateRejections(srv)
	t.Logf("in flight at the freeze: %d; duplicate attempts: %d; A attempted %d sends", inFlight, dups, len(sendsA))
	assert.LessOrEqual(t, dups, inFlight, "duplicate attempts bounded by the sends in flight at the freeze")
}

// One replica cut off from Redis for longer than its lease (a network partition; Redis itself goes
// on, so the lease key expires), while WeCom retries a callback: the messages queued when the lease
// was lost are dropped and handled once by the next holding; only those whose handlers were running
// (or had just finished, their done mark not yet written) run twice, and no reply is accepted twice. The same with Redis paused (CLIENT PAUSE: nothing
// expires meanwhile).
func TestRedisUnreachablePastLease(t *testing.T) {
	t.Parallel()
	for _, pause := range []string{"partition", "client pause"} {
		t.Run(pause, func(t *testing.T) {
			t.Parallel()
			addr, _, _ := redistest.Start(t)
			hook := &freezeHook{}
			rdb := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
			rdb.AddHook(hook)
			t.Cleanup(func() { hook.thaw(); _ = rdb.Close() })
			admin := goredis.NewClient(&goredis.Options{Addr: addr})
			t.Cleanup(func() { _ = admin.Close() })
			srv := kftest.NewServer()
			t.Cleanup(srv.Close)
			e := &env{t: t, srv: srv, dir: t.TempDir()}
			const workers = 4
			e.start(WithStores(redis.New(rdb, redis.WithPrefix("paused:"))), WithLeaseTTL(time.Second), WithWorkers(workers), fastRetry)
			var runs sync.Map
			e.ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error {
				n, _ := runs.LoadOrStore(m.MsgID, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				select {
				case <-time.After(300 * time.Millisecond): // a model call
				case <-ctx.Done():
					return ctx.Err()
				}
				return r.Text(ctx, m.Text.Content)
			})
			want := map[string][]string{}
			for i := range 12 {
				u := fmt.Sprintf("q%d", i%4) // three each: WeCom allows five replies after a customer's latest
				text := fmt.Sprintf("%s-%d", u, i)
				want[u] = append(want[u], text)
				srv.AddText(u, text)
			}
			e.notify()
			require.Eventually(t, func() bool { return len(srv.Sent()) >= 2 }, 10*time.Second, time.Millisecond)
			if pause == "partition" {
				hook.freeze()
				time.AfterFunc(2500*time.Millisecond, hook.thaw)
			} else {
				require.NoError(t, admin.Do(context.Background(), "CLIENT", "PAUSE", "2500", "ALL").Err())
			}
			e.notify() // WeCom retries a callback meanwhile: the account is owed a pull
			require.Eventually(t, func() bool { return len(srv.Sent()) >= 12 }, 20*time.Second, 5*time.Millisecond)
			e.settle()
			checkExactlyOnce(t, srv, want)
			twice := 0
			runs.Range(func(_, v any) bool {
				if v.(*atomic.Int32).Load() > 1 {
					twice++
				}
				return true
			})
			t.Logf("messages run twice: %d; lease losses %d", twice, e.ch.Stats().LeaseLosses)
			// At most one handler per worker was running, and at most one more per worker had finished
			// with its done mark still being written.
			assert.LessOrEqual(t, twice, 2*workers, "only handlers running (or just finished) at the loss run again")
			assert.Positive(t, e.ch.Stats().LeaseLosses)
		})
	}
}

// stallHook holds every command of one Redis client from the first one that writes a cursor, as a
// replica that stalls in the middle of a cursor save (and then, still stalled, stops renewing).
type stallHook struct {
	armed   atomic.Bool
	stalled atomic.Bool
	release chan struct{}
}

func (h *stallHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *stallHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if name := cmd.Name(); h.armed.Load() && !h.stalled.Load() && (name == "evalsha" || name == "eval" || name == "set") {
			for _, a := range cmd.Args()[1:] {
				if s, ok := a.(string); ok && strings.Contains(s, "cursor") {
					h.stalled.Store(true)
				}
			}
		}
		if h.stalled.Load() {
			<-h.release
		}
		return next(ctx, cmd)
	}
}

func (h *stallHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if h.stalled.Load() {
			<-h.release
		}
		return next(ctx, cmds)
	}
}

// A replica that stalls between its lease check and its cursor save, for longer than its lease,
// cannot overwrite the cursor the next holder saved meanwhile: the store refuses the stale save.
func TestStaleCursorSaveRefused(t *testing.T) {
	t.Parallel()
	addr, _, _ := redistest.Start(t)
	hook := &stallHook{release: make(chan struct{})}
	rdbA := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	rdbA.AddHook(hook)
	rdbB := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdbA.Close(); _ = rdbB.Close() })
	srv := kftest.NewServer()
	t.Cleanup(srv.Close)
	storeB := redis.New(rdbB, redis.WithPrefix("stall:"))
	a := &env{t: t, srv: srv, dir: t.TempDir()}
	a.start(WithStores(redis.New(rdbA, redis.WithPrefix("stall:"))), WithLeaseTTL(500*time.Millisecond), WithSkipHistory(false))
	a.ch.OnMessage(echo)
	b := &env{t: t, srv: srv, dir: t.TempDir()}
	b.start(WithStores(storeB), WithLeaseTTL(500*time.Millisecond), WithSkipHistory(false))
	b.ch.OnMessage(echo)

	hook.armed.Store(true)
	srv.AddText("sam", "one")
	a.notify()
	require.Eventually(t, hook.stalled.Load, 5*time.Second, time.Millisecond, "A reaches its cursor save")
	time.Sleep(time.Second) // A's lease expires while it is stalled
	srv.AddText("sam", "two")
	b.notify()
	b.waitTexts("sam", []string{"one", "two"}, 10*time.Second)
	b.settle()
	require.Eventually(t, func() bool {
		cur, err := storeB.Load(context.Background(), srv.OpenKfID())
		return err == nil && cur != ""
	}, 5*time.Second, 5*time.Millisecond)
	saved, err := storeB.Load(context.Background(), srv.OpenKfID())
	require.NoError(t, err)

	close(hook.release) // A resumes: its save is late
	time.Sleep(500 * time.Millisecond)
	after, err := storeB.Load(context.Background(), srv.OpenKfID())
	require.NoError(t, err)
	assert.Equal(t, saved, after, "the stale replica did not overwrite the new holder's cursor")
	checkExactlyOnce(t, srv, map[string][]string{"sam": {"one", "two"}})
}
