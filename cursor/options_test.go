package cursor_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
)

// invalidOptions are the option values that must be reported, never replaced by the default.
func invalidOptions() map[string]cursor.Option {
	return map[string]cursor.Option{
		"retention 0":         cursor.WithRetention(0),
		"retention below 1ms": cursor.WithRetention(time.Millisecond - 1),
		"negative retention":  cursor.WithRetention(-time.Hour),
		"nil clock":           cursor.WithClock(nil),
		"nil logger":          cursor.WithLogger(nil),
	}
}

// An invalid option makes OpenDir fail with ErrInvalidArgument before it touches the directory.
func TestOpenDirInvalidOptions(t *testing.T) {
	t.Parallel()
	for name, opt := range invalidOptions() {
		dir := filepath.Join(t.TempDir(), "state")
		d, err := cursor.OpenDir(dir, cursor.WithJournalSync(false), opt)
		require.ErrorIs(t, err, cursor.ErrInvalidArgument, name)
		require.Nil(t, d, name)
		_, err = os.Stat(dir)
		require.ErrorIs(t, err, os.ErrNotExist, "%s: nothing is created", name)
	}
	// Nil options are ignored; valid ones are accepted.
	d, err := cursor.OpenDir(t.TempDir(), nil, cursor.WithRetention(time.Millisecond), nil,
		cursor.WithClock(time.Now), cursor.WithLogger(slog.Default()))
	require.NoError(t, err)
	require.NoError(t, d.Close())
}

// NewMemory has no error to return: every method of a Memory with an invalid option returns it.
func TestMemoryInvalidOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, opt := range invalidOptions() {
		m := cursor.NewMemory(nil, opt, nil)
		_, err := m.Load(ctx, "wk")
		errs := map[string]error{
			"Load":     err,
			"Save":     m.Save(ctx, "wk", "c"),
			"MarkDone": m.MarkDone(ctx, "wk", "m"),
		}
		_, errs["Done"] = m.Done(ctx, "wk", "m")
		_, errs["Lookup"] = m.Lookup(ctx, "wk", "m")
		_, errs["LoadMeta"] = m.LoadMeta(ctx, "wk", "n")
		_, errs["Accounts"] = m.Accounts(ctx)
		_, errs["Lock"] = m.Lock(ctx, "wk", time.Second)
		errs["Close"] = m.Close()
		for method, err := range errs {
			require.ErrorIs(t, err, cursor.ErrInvalidArgument, "%s: %s", name, method)
		}
	}
	// Nil options are ignored.
	m := cursor.NewMemory(nil, cursor.WithRetention(time.Millisecond), nil)
	require.NoError(t, m.Save(ctx, "wk", "c"))
	l, err := m.Lock(ctx, "wk", time.Second)
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	require.NoError(t, m.Close())
}
