package redis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis"
)

// putHolder holds back the first reply-record script until release is closed, and counts the scripts.
type putHolder struct {
	held    atomic.Bool
	scripts atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (h *putHolder) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *putHolder) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && (args[1] == redis.PutReplyScriptHash || cmd.Name() == "eval") {
			if cmd.Name() == "evalsha" {
				h.scripts.Add(1)
			}
			if h.held.CompareAndSwap(false, true) {
				close(h.entered)
				<-h.release
			}
		}
		return next(ctx, cmd)
	}
}
func (h *putHolder) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// The PutReply calls made while another's write is on its way share the next script, in the order they
// came; a caller that gives up fails alone, even when it leads the batch.
func testPutReplyGroupCommit(t *testing.T, b *backend) {
	ctx := context.Background()
	c := b.client(t)
	s := redis.New(c, redis.WithPrefix(uniquePrefix(t)))
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	defer l.Release(ctx)
	require.NoError(t, l.PutReply(ctx, "warm", []byte("r"))) // loads the script: EVALSHA from now on
	h := &putHolder{entered: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(h)

	first := make(chan error, 1)
	go func() { first <- l.PutReply(ctx, "first", []byte("r")) }()
	<-h.entered // the first write is on its way

	gaveUp, cancel := context.WithCancel(ctx)
	errs := make([]error, 10)
	leader := make(chan error, 1)
	var wg sync.WaitGroup
	for i := range errs {
		pctx := ctx
		if i == 0 {
			pctx = gaveUp // the leader of the next batch gives up
		}
		wg.Go(func() {
			id, rec := fmt.Sprintf("m%d", i), fmt.Sprintf("r%d", i)
			if i == 9 {
				id, rec = "m1", "r1-again" // the same msgid twice in a batch: the later record wins
			}
			err := l.PutReply(pctx, id, []byte(rec))
			if i == 0 {
				leader <- err
				return
			}
			errs[i] = err
		})
		for redis.QueuedPuts(l) != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	require.ErrorIs(t, <-leader, context.Canceled, "the leader returns at once")
	close(h.release)
	require.NoError(t, <-first)
	wg.Wait()
	for i, err := range errs[1:] {
		require.NoError(t, err, "put %d", i+1)
	}
	require.Equal(t, int64(2), h.scripts.Load(), "11 records in 2 scripts")

	ids := []string{"first", "m0", "m1", "m2", "m8"}
	st, err := s.Lookup(ctx, "wk", ids...)
	require.NoError(t, err)
	var got []string
	for _, x := range st {
		got = append(got, string(x.Reply))
	}
	require.Equal(t, []string{"r", "r0", "r1-again", "r2", "r8"}, got, "the leader that gave up still wrote the batch")
}

// A done mark maintains the account's keys (trim, time-to-live) only when its Store has not done so for an
// eighth of the retention (10 s by default): the marks in between are TIME, ZADD and HDEL.
func testMarkMaintenanceIsPeriodic(t *testing.T, b *backend) {
	ctx := context.Background()
	c, p, s := newBoundedStore(t, b) // retention 1 s: maintenance at most every 125 ms
	key := p + "{wk}:done"
	l, err := s.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	defer l.Release(ctx)
	ttl := func() time.Duration {
		d, err := c.PTTL(ctx, key).Result()
		require.NoError(t, err)
		return d
	}
	start := time.Now()
	require.NoError(t, l.MarkDone(ctx, "a"))
	marked := time.Now() // the Store noted its maintenance between start and now
	require.Positive(t, ttl(), "the first mark sets the time-to-live")
	require.NoError(t, b.admin.Persist(ctx, key).Err())
	require.NoError(t, l.MarkDone(ctx, "b"))
	if time.Since(start) < boundedRetention/8 {
		require.Equal(t, time.Duration(-1), ttl(), "a mark soon after does not maintain")
	}
	time.Sleep(time.Until(marked.Add(boundedRetention/8 + 10*time.Millisecond)))
	require.NoError(t, l.MarkDone(ctx, "c"))
	require.Positive(t, ttl(), "a mark after the interval maintains again")
	require.LessOrEqual(t, ttl(), boundedRetention+boundedRetention/4)
	other := redis.New(c, redis.WithPrefix(p), redis.WithRetention(boundedRetention))
	require.NoError(t, b.admin.Persist(ctx, key).Err())
	require.NoError(t, other.MarkDone(ctx, "wk", "d"))
	require.Positive(t, ttl(), "each Store maintains on its own")
	st, err := s.Lookup(ctx, "wk", "a", "b", "c", "d")
	require.NoError(t, err)
	for i, x := range st {
		require.True(t, x.Done, "mark %d", i)
	}
}
