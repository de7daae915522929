package cursor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The set stays bounded: after the retention every mark is dropped and the queue's backing array is reused.
func TestDoneSetBounded(t *testing.T) {
	t.Parallel()
	s := newDoneSet(1000)
	now := int64(1)
	for round := range 50 {
		for i := range 1000 {
			s.add("wk", fmt.Sprintf("r%d-%d", round, i), now)
			s.add("wk", fmt.Sprintf("r%d-%d", round, i), now) // re-marked: one live entry, two queued
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

func TestDoneSetRemarkKeepsNewest(t *testing.T) {
	t.Parallel()
	s := newDoneSet(100)
	s.add("wk", "m", 10)
	s.add("wk", "m", 60)
	s.expire(115) // the first mark's queue entry expires; the newer mark must survive it
	require.True(t, s.has("wk", "m", 115))
	require.Equal(t, 1, s.live)
	var n int
	s.each(func(e doneEntry) { n++; require.Equal(t, int64(60), e.at) })
	require.Equal(t, 1, n, "each yields only the current mark")
	require.False(t, s.has("wk", "m", 160))
}
