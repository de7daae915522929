package kf

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor/redis"
	"github.com/wxkf/wxkf/cursor/redis/redistest"
	"github.com/wxkf/wxkf/kf/kftest"
)

// redisCommands returns the number of commands the server has run (INFO commandstats), and the
// count per command.
func redisCommands(tb testing.TB, rdb *goredis.Client) (int64, map[string]int64) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	per := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" {
			continue
		}
		per[name] = n
		total += n
	}
	return total, per
}

// BenchmarkRedisCommandsPerMessage counts the Redis commands two replicas spend per handled and
// answered message: 500 messages from 500 customers (each answered once: WeCom's quota does not get
// in the way), a callback each, spread over the replicas. Commands are counted with INFO
// commandstats, so the commands a Lua script runs count too. It reports cmds/msg (and the commands
// in the log).
//
//   - steady: 100 messages a second for 5 s, well under WeCom's ceiling of 10,000 sends a minute
//     per corp: the load a busy account sees.
//   - burst: all 500 at once. They exceed the rate limiter's burst, so the sends are paced at the
//     ceiling (9,500 a minute) and the run takes about 3 s.
func BenchmarkRedisCommandsPerMessage(b *testing.B) {
	for _, bc := range []struct {
		name  string
		every time.Duration // between two messages
	}{{"steady", 10 * time.Millisecond}, {"burst", 0}} {
		b.Run(bc.name, func(b *testing.B) { benchRedisCommands(b, bc.every) })
	}
}

func benchRedisCommands(b *testing.B, every time.Duration) {
	addr, _, _ := redistest.Start(b)
	admin := goredis.NewClient(&goredis.Options{Addr: addr})
	defer admin.Close()
	var perMsg []float64
	for i := 0; b.Loop(); i++ {
		srv := kftest.NewServer()
		var reps []*env
		for range 2 {
			rdb := goredis.NewClient(&goredis.Options{Addr: addr})
			e := &env{t: nil, srv: srv, dir: b.TempDir()}
			ch, err := NewChannel(Config{CorpID: srv.CorpID(), Secret: srv.Secret(), Token: srv.CallbackToken(), EncodingAESKey: srv.EncodingAESKey()},
				WithStores(redis.New(rdb, redis.WithPrefix(fmt.Sprintf("bench%d:", i)))), WithClientOptions(WithBaseURL(srv.URL())), WithWorkers(32))
			if err != nil {
				b.Fatal(err)
			}
			ch.OnMessage(func(ctx context.Context, m *Message, r Replier) error { return r.Text(ctx, m.Text.Content) })
			e.ch = ch
			reps = append(reps, e)
			defer rdb.Close()
		}
		before, beforePer := redisCommands(b, admin)
		const customers = 500
		tick := time.Now()
		for c := range customers {
			srv.AddText(fmt.Sprintf("c%d", c), "m")
			reps[c%2].ch.Trigger(srv.OpenKfID(), srv.IssueSyncToken(srv.OpenKfID()))
			if every > 0 {
				tick = tick.Add(every)
				time.Sleep(time.Until(tick))
			}
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			h := reps[0].ch.Stats().Handled + reps[1].ch.Stats().Handled
			if h >= customers {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("handled %d of %d", h, customers)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, e := range reps {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = e.ch.Shutdown(ctx)
			cancel()
		}
		after, afterPer := redisCommands(b, admin)
		perMsg = append(perMsg, float64(after-before)/float64(customers))
		var top []string
		for k, v := range afterPer {
			if d := v - beforePer[k]; d > 0 {
				top = append(top, fmt.Sprintf("%s=%d", k, d))
			}
		}
		slices.Sort(top)
		b.Logf("commands %d for %d messages: %v", after-before, customers, top)
		srv.Close()
	}
	var sum float64
	for _, p := range perMsg {
		sum += p
	}
	b.ReportMetric(sum/float64(len(perMsg)), "cmds/msg")
}
