package cursor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
)

// The clock starts at a fixed, realistic time; only Advance moves it.
var epoch = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	cursortest.Run(t, func(t *testing.T) *cursortest.Harness {
		clock := cursortest.NewClock(epoch)
		m := cursor.NewMemory(cursor.WithClock(clock.Now))
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		return &cursortest.Harness{
			State:       m,
			Retention:   cursor.DefaultRetention,
			Advance:     clock.Advance,
			ExpireLease: func(string) { clock.Advance(time.Hour) },
		}
	})
}

func TestDirConformance(t *testing.T) {
	t.Parallel()
	cursortest.Run(t, func(t *testing.T) *cursortest.Harness {
		dir := t.TempDir()
		clock := cursortest.NewClock(epoch)
		var open func() *cursortest.Harness
		open = func() *cursortest.Harness {
			d, err := cursor.OpenDir(dir, cursor.WithClock(clock.Now))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, d.Close()) })
			h := &cursortest.Harness{
				State:       d,
				Retention:   cursor.DefaultRetention,
				Advance:     clock.Advance,
				ExpireLease: func(string) { clock.Advance(time.Hour) },
			}
			h.Reopen = func() *cursortest.Harness {
				require.NoError(t, d.Close())
				return open()
			}
			return h
		}
		return open()
	})
}
