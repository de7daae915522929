package cursor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
)

// A holder paused past its ttl sees the loss at its first check: Err reads the clock, it does not wait for
// the renewer (which, with a one-hour ttl, would not tick for twenty minutes).
func TestLeaseErrReadsClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := cursortest.NewClock(epoch)
	m := cursor.NewMemory(cursor.WithClock(clock.Now))
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	l, err := m.Lock(ctx, "wk", time.Hour)
	require.NoError(t, err)
	require.NoError(t, l.Save(ctx, "c1"))

	clock.Advance(time.Hour - time.Millisecond)
	require.NoError(t, l.Err(), "still inside the ttl")
	clock.Advance(time.Millisecond)
	require.ErrorIs(t, l.Err(), cursor.ErrLeaseLost, "at the deadline")
	require.False(t, isClosed(l.Done()), "the renewer has not run")
	require.ErrorIs(t, l.Save(ctx, "c2"), cursor.ErrLeaseLost)
	require.ErrorIs(t, l.Release(ctx), cursor.ErrLeaseLost, "a lease past its deadline was lost, not released")
	require.True(t, isClosed(l.Done()))
	got, err := m.Load(ctx, "wk")
	require.NoError(t, err)
	require.Equal(t, "c1", got)

	// The key is free for the next holder, whose token is greater.
	l2, err := m.Lock(ctx, "wk", time.Hour)
	require.NoError(t, err)
	require.Greater(t, l2.Token(), l.Token())
	require.NoError(t, l2.Release(ctx))
}

// The metadata of Memory and Dir is the cursor-map entry "<open_kfid>#wxkf_<name>" that kf wrote with Save
// before metadata had methods of its own.
func TestMetaIsTheLegacyCursorKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range map[string]cursor.State{
		"Memory": cursor.NewMemory(),
		"Dir":    openDir(t, t.TempDir()),
	} {
		require.NoError(t, s.Save(ctx, "wk#wxkf_history_before", "1741944413"), name)
		got, err := s.LoadMeta(ctx, "wk", "history_before")
		require.NoError(t, err, name)
		require.Equal(t, "1741944413", got, name)

		l, err := s.Lock(ctx, "wk", time.Minute)
		require.NoError(t, err, name)
		require.NoError(t, l.SetMeta(ctx, "history_before", "1741944999"), name)
		require.NoError(t, l.Release(ctx), name)
		got, err = s.Load(ctx, "wk#wxkf_history_before")
		require.NoError(t, err, name)
		require.Equal(t, "1741944999", got, name)

		accounts, err := s.Accounts(ctx)
		require.NoError(t, err, name)
		require.Equal(t, []string{"wk"}, accounts, "%s: the metadata suffix is not an account", name)
		if m, ok := s.(*cursor.Memory); ok {
			require.NoError(t, m.Close())
		}
	}
}
