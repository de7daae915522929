package cursor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The set stays bounded: after the retention every mark is dropped and the queue's backing array is reused.
func TestMsgSetBounded(t *testing.T) {
	t.Parallel()
	s := newMsgSet(1000)
	now := int64(1)
	for round := range 50 {
		for i := range 1000 {
			s.add("wk", fmt.Sprintf("r%d-%d", round, i), now, nil)
			s.add("wk", fmt.Sprintf("r%d-%d", round, i), now, nil) // re-marked: one live entry, two queued
		}
		now += 500
		s.expire(now)
		require.LessOrEqual(t, s.live, 4000, "round %d", round)
		require.LessOrEqual(t, len(s.fifo)-s.head, 8000, "round %d", round)
	}
	s.expire(now + 1000)
	require.Zero(t, s.live)
	require.Empty(t, s.m)
	require.LessOrEqual(t, len(s.fifo), 64+1, "the popped prefix is reclaimed")
}

func TestMsgSetRemarkKeepsNewest(t *testing.T) {
	t.Parallel()
	s := newMsgSet(100)
	s.add("wk", "m", 10, nil)
	s.add("wk", "m", 60, nil)
	s.expire(115) // the first mark's queue entry expires; the newer mark must survive it
	require.True(t, s.has("wk", "m", 115))
	require.Equal(t, 1, s.live)
	var n int
	s.each(func(e msgEntry, _ []byte) { n++; require.Equal(t, int64(60), e.at) })
	require.Equal(t, 1, n, "each yields only the current mark")
	require.False(t, s.has("wk", "m", 160))
}

// A removed entry is gone at once; its queued entry is skipped by expire and each, and a later add of the
// same msgid is not dropped by it.
func TestMsgSetRemove(t *testing.T) {
	t.Parallel()
	s := newMsgSet(100)
	s.add("wk", "m", 10, []byte("r"))
	s.add("wk", "n", 10, nil)
	s.remove("wk", "m")
	s.remove("wk", "m") // twice is fine
	s.remove("wk", "never")
	require.False(t, s.has("wk", "m", 20))
	require.Equal(t, 1, s.live)
	s.add("wk", "m", 50, []byte("again"))
	s.expire(115) // pops the removed entry of m and the entry of n
	mk, ok := s.get("wk", "m", 115)
	require.True(t, ok)
	require.Equal(t, []byte("again"), mk.rec)
	var n int
	s.each(func(e msgEntry, rec []byte) { n++; require.Equal(t, "m", e.id); require.Equal(t, []byte("again"), rec) })
	require.Equal(t, 1, n)
	s.expire(150)
	require.Zero(t, s.live)
	require.Empty(t, s.m)
}
