package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/redis"
)

// Owed marks: a newer mark replaces an older one; a clear removes only the mark it names; only marks
// older than the age are listed, oldest first, by the server's clock.
func testOwedMarks(t *testing.T, b *backend) {
	ctx := context.Background()
	s := redis.New(b.client(t), redis.WithPrefix(uniquePrefix(t)))
	var _ cursor.Owed = s

	m1, err := s.MarkOwed(ctx, "wkA")
	require.NoError(t, err)
	time.Sleep(2 * time.Millisecond)
	m2, err := s.MarkOwed(ctx, "wkA")
	require.NoError(t, err)
	assert.Greater(t, m2, m1, "a newer mark replaces the older")
	_, err = s.MarkOwed(ctx, "wkB")
	require.NoError(t, err)

	none, err := s.OwedOlder(ctx, time.Hour)
	require.NoError(t, err)
	assert.Empty(t, none, "nothing is an hour old")
	time.Sleep(30 * time.Millisecond)
	old, err := s.OwedOlder(ctx, 20*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, old, 2)
	assert.LessOrEqual(t, old[0].Mark, old[1].Mark, "oldest first")
	marks := map[string]int64{old[0].OpenKfID: old[0].Mark, old[1].OpenKfID: old[1].Mark}
	assert.Equal(t, m2, marks["wkA"], "the newer mark")

	require.NoError(t, s.ClearOwed(ctx, "wkA", m1), "a stale mark clears nothing")
	old, err = s.OwedOlder(ctx, 0)
	require.NoError(t, err)
	assert.Len(t, old, 2)
	require.NoError(t, s.ClearOwed(ctx, "wkA", m2))
	require.NoError(t, s.ClearOwed(ctx, "wkB", marks["wkB"]))
	old, err = s.OwedOlder(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, old)

	_, err = s.MarkOwed(ctx, "")
	assert.ErrorIs(t, err, cursor.ErrInvalidArgument)
	_, err = s.OwedOlder(ctx, -time.Second)
	assert.ErrorIs(t, err, cursor.ErrInvalidArgument)
}
