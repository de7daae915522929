package redis_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a Redis to run the tests against: a single node, or a Cluster of three masters.
type backend struct {
	name string
	// client returns a new client, closed at t's cleanup: a *goredis.Client or a *goredis.ClusterClient.
	client func(t testing.TB) goredis.UniversalClient
	// admin is a client for the test's own commands.
	admin goredis.UniversalClient
	// private starts a backend of the same kind for one test alone (one that disturbs the others).
	private func(t testing.TB) *backend
}

func startSingle(t testing.TB) *backend {
	addr, _, _ := redistest.Start(t)
	b := &backend{name: "single", client: func(t testing.TB) goredis.UniversalClient { return newClient(t, addr) },
		private: startSingle}
	b.admin = b.client(t)
	return b
}

func startCluster(t testing.TB) *backend {
	addrs := redistest.StartCluster(t)
	b := &backend{name: "cluster", client: func(t testing.TB) goredis.UniversalClient {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}, private: startCluster}
	b.admin = b.client(t)
	return b
}

func newClient(t testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eachMaster runs fn on every master of b: the node itself, or each master of the Cluster.
func (b *backend) eachMaster(ctx context.Context, fn func(ctx context.Context, c *goredis.Client) error) error {
	switch c := b.admin.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *goredis.Client:
		return fn(ctx, c)
	}
	return fmt.Errorf("unexpected client %T", b.admin)
}

// keys returns every key under prefix, on every master.
func (b *backend) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var mu sync.Mutex
	var out []string
	err := b.eachMaster(context.Background(), func(ctx context.Context, c *goredis.Client) error {
		keys, err := c.Keys(ctx, strings.ReplaceAll(prefix, "*", `\*`)+"*").Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	})
	require.NoError(t, err)
	return out
}

// redisTests run against both backends, in parallel, on the backend's servers; each uses its own prefix.
var redisTests = []struct {
	name string
	fn   func(t *testing.T, b *backend)
}{
	{"Conformance", testConformance},
	{"KeyLayout", testKeyLayout},
	{"DedupSetIsBounded", testDedupSetIsBounded},
	{"ReplyRecordsAreBounded", testReplyRecordsBounded},
	{"DedupLargeBatchAndScriptFlush", testDedupLargeBatchAndScriptFlush},
	{"BatchIsOneRoundTrip", testBatchIsOneRoundTrip},
	{"AccountRegisteredOncePerLease", testRegisteredOncePerLease},
	{"PutReplyGroupCommit", testPutReplyGroupCommit},
	{"MarkMaintenanceIsPeriodic", testMarkMaintenanceIsPeriodic},
	{"FencedWriteRefusedByServer", testFencedWriteRefusedByServer},
	{"LegacyMigration", testLegacyMigration},
	{"TokenStore", testTokenStore},
	{"LeaseSurvivesShortBlip", testLeaseSurvivesShortBlip},
	{"RateLimitState", testRateLimitState},
	{"OwedMarks", testOwedMarks},
}

// TestRedis runs the tests of this package against a single redis-server and against a Redis Cluster of three
// masters (a goredis.ClusterClient), each started once for all of them.
func TestRedis(t *testing.T) {
	t.Parallel()
	for _, backend := range []struct {
		name  string
		start func(testing.TB) *backend
	}{{"single", startSingle}, {"cluster", startCluster}} {
		t.Run(backend.name, func(t *testing.T) {
			t.Parallel()
			b := backend.start(t)
			for _, tc := range redisTests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, b)
				})
			}
		})
	}
}

var prefixes atomic.Int64

// uniquePrefix gives each store its own keys on a shared server.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("test%d:%s:", prefixes.Add(1), t.Name())
}

// renewStaller holds back the lease renewals sent through one client while it is stalled: the renewal
// blocks, whatever its context, until resume. It stands for a renewer that cannot run (a paused process).
type renewStaller struct {
	mu   sync.Mutex
	gate chan struct{} // nil when not stalled
}

func (s *renewStaller) stall() (resume func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.gate == g {
			s.gate = nil
		}
		s.mu.Unlock()
		close(g)
	}
}

func (s *renewStaller) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (s *renewStaller) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (s *renewStaller) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if isRenewal(cmd) {
			s.mu.Lock()
			g := s.gate
			s.mu.Unlock()
			if g != nil {
				<-g
			}
		}
		return next(ctx, cmd)
	}
}

// isRenewal reports whether cmd runs the lease renewal script (EVALSHA, or EVAL after a NOSCRIPT).
func isRenewal(cmd goredis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 2 {
		return false
	}
	name, _ := args[0].(string)
	body, _ := args[1].(string)
	switch strings.ToLower(name) {
	case "evalsha":
		return body == redis.RenewScriptHash
	case "eval":
		sum := sha1.Sum([]byte(body))
		return hex.EncodeToString(sum[:]) == redis.RenewScriptHash
	}
	return false
}
