package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// Both memories keep the last turns of each key, oldest first, cut long messages, and forget.
func TestMemory(t *testing.T) {
	t.Parallel()
	addr, _, _ := redistest.Start(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	for name, mem := range map[string]Memory{
		"local": newLocalMemory(3, 100, time.Hour),
		"redis": newRedisMemory(rdb, "test:", 3, time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			h, err := mem.History(ctx, "wk/nobody")
			require.NoError(t, err)
			assert.Empty(t, h)
			for i := range 5 {
				require.NoError(t, mem.Add(ctx, "wk/ann", Turn{User: fmt.Sprint("q", i), Assistant: fmt.Sprint("a", i)}))
			}
			require.NoError(t, mem.Add(ctx, "wk/bob", Turn{User: strings.Repeat("长", maxTurnBytes), Assistant: "ok"}))
			h, err = mem.History(ctx, "wk/ann")
			require.NoError(t, err)
			assert.Equal(t, []Turn{{"q2", "a2"}, {"q3", "a3"}, {"q4", "a4"}}, h)
			h, err = mem.History(ctx, "wk/bob")
			require.NoError(t, err)
			require.Len(t, h, 1)
			assert.LessOrEqual(t, len(h[0].User), maxTurnBytes)
			assert.True(t, strings.HasPrefix(h[0].User, "长长"))
		})
	}
	ttl, err := rdb.TTL(context.Background(), "test:wk/ann").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 59*time.Minute, "redis memory expires")
}

// The local memory bounds its customers and forgets after the TTL.
func TestLocalMemoryBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	m := newLocalMemory(2, 3, time.Hour)
	m.now = func() time.Time { return now }
	for i := range 5 {
		require.NoError(t, m.Add(ctx, fmt.Sprint("c", i), Turn{User: "q", Assistant: "a"}))
	}
	assert.Equal(t, 3, m.lru.Len())
	h, _ := m.History(ctx, "c0")
	assert.Empty(t, h, "the least recently active customer went first")
	now = now.Add(2 * time.Hour)
	h, _ = m.History(ctx, "c4")
	assert.Empty(t, h, "forgotten after the TTL")
	assert.Zero(t, m.lru.Len())
}
