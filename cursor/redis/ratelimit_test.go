package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/redis"
)

type rateRule = struct{ Interval, Tolerance time.Duration }

// The rate limiter's state of a corp and path is one hash, <prefix>{<corpid>}:rate:<path>, in the slot of
// the corp's hash tag, expiring once it holds nothing the next call needs. (kf's TestRateStoreSemantics
// runs the semantics against this store and kf's own.)
func testRateLimitState(t *testing.T, b *backend) {
	ctx := context.Background()
	prefix := uniquePrefix(t)
	s := redis.New(b.client(t), redis.WithPrefix(prefix))
	const path = "/cgi-bin/kf/send_msg"
	rules := []rateRule{{Interval: 10 * time.Millisecond, Tolerance: 50 * time.Millisecond}}
	got, _, paused, err := s.AdmitCalls(ctx, "wwA", path, 3, rules)
	require.NoError(t, err)
	assert.Equal(t, 3, got)
	assert.False(t, paused)
	key := prefix + "{wwA}:rate:" + path
	assert.Equal(t, []string{key}, b.keys(t, prefix))
	ttl, err := b.admin.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
	assert.LessOrEqual(t, ttl, 1100*time.Millisecond, "kept only while the next call needs it")
	if cl, ok := b.admin.(*goredis.ClusterClient); ok {
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		require.NoError(t, err)
		corpSlot, err := cl.ClusterKeySlot(ctx, "{wwA}").Result()
		require.NoError(t, err)
		assert.Equal(t, corpSlot, slot, "the corp's hash tag")
	}

	d, strike, err := s.PauseCalls(ctx, "wwA", path, 2*time.Second, 8*time.Second, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, d)
	assert.Equal(t, 1, strike)
	ttl, err = b.admin.PTTL(ctx, key).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 61*time.Second, "the pause and its reset window are kept")
	f, err := b.admin.HGetAll(ctx, key).Result()
	require.NoError(t, err)
	assert.Contains(t, f, "p")
	assert.Equal(t, "1", f["s"])

	for name, call := range map[string]func() error{
		"corp with a brace": func() error { _, _, _, err := s.AdmitCalls(ctx, "w{A", path, 1, rules); return err },
		"empty path":        func() error { _, _, _, err := s.AdmitCalls(ctx, "wwA", "", 1, rules); return err },
		"no calls":          func() error { _, _, _, err := s.AdmitCalls(ctx, "wwA", path, 0, rules); return err },
		"zero interval": func() error {
			_, _, _, err := s.AdmitCalls(ctx, "wwA", path, 1, []rateRule{{Tolerance: time.Second}})
			return err
		},
		"tolerance under the interval": func() error {
			_, _, _, err := s.AdmitCalls(ctx, "wwA", path, 1, []rateRule{{Interval: time.Second, Tolerance: time.Millisecond}})
			return err
		},
		"no pause": func() error { _, _, err := s.PauseCalls(ctx, "wwA", path, 0, time.Second, 0); return err },
		"max under min": func() error {
			_, _, err := s.PauseCalls(ctx, "wwA", path, time.Second, time.Millisecond, 0)
			return err
		},
	} {
		assert.ErrorIs(t, call(), cursor.ErrInvalidArgument, name)
	}
}
