package cursor_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
)

const lockHelperEnv = "WXKF_CURSOR_LOCK_HELPER_DIR"

// lockHelper runs in a child process (the test binary re-executed): it opens the directory named by
// lockHelperEnv and reports on stdout. If it got the lock it holds it until stdin closes.
func lockHelper() int {
	d, err := cursor.OpenDir(os.Getenv(lockHelperEnv))
	if err != nil {
		fmt.Println("error:", err)
		return 3
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := d.Close(); err != nil {
		fmt.Println("close:", err)
		return 4
	}
	return 0
}

func lockHelperCmd(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	return cmd
}

func openDir(t *testing.T, dir string, opts ...cursor.Option) *cursor.Dir {
	t.Helper()
	d, err := cursor.OpenDir(dir, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestDirLockSameProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDir(t, dir)

	start := time.Now()
	d2, err := cursor.OpenDir(dir)
	require.ErrorIs(t, err, cursor.ErrDirLocked)
	require.Nil(t, d2)
	require.Contains(t, err.Error(), dir, "the error names the directory")
	require.Less(t, time.Since(start), time.Second, "fails fast, does not wait for the lock")

	// A relative spelling of the same directory is the same lock.
	rel, err := filepath.Rel(mustGetwd(t), filepath.Join(dir, "."))
	require.NoError(t, err)
	_, err = cursor.OpenDir(rel)
	require.ErrorIs(t, err, cursor.ErrDirLocked)

	require.NoError(t, d.Close())
	d3 := openDir(t, dir)
	require.NoError(t, d3.Close())
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}

func TestDirLockOtherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("child blocked while parent holds", func(t *testing.T) {
		d := openDir(t, dir)
		out, err := lockHelperCmd(t, dir).Output()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, 3, exit.ExitCode(), "output: %s", out)
		require.Contains(t, string(out), dir)
		require.Contains(t, string(out), cursor.ErrDirLocked.Error())
		require.NoError(t, d.Close())

		out, err = lockHelperCmd(t, dir).Output() // stdin is empty: it locks, then exits
		require.NoError(t, err, "output: %s", out)
		require.Equal(t, "locked\n", string(out))
	})

	t.Run("parent blocked while child holds", func(t *testing.T) {
		cmd := lockHelperCmd(t, dir)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "locked\n", line)

		_, err = cursor.OpenDir(dir)
		require.ErrorIs(t, err, cursor.ErrDirLocked)
		require.Contains(t, err.Error(), dir)

		require.NoError(t, stdin.Close())
		require.NoError(t, cmd.Wait())
		d := openDir(t, dir)
		require.NoError(t, d.Close())
	})
}

func TestDirCreatesMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "b")
	d := openDir(t, dir)
	require.Equal(t, dir, d.Path())
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.True(t, st.IsDir())
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())

	_, err = cursor.OpenDir("")
	require.ErrorIs(t, err, cursor.ErrInvalidArgument)
}

func copyFixture(t *testing.T, name, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "python", name))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, cursor.CursorFileName), data, 0o644))
}

// Files written by chatgpt-on-wechat (Python json.dump: ASCII escapes with surrogate pairs, or indented UTF-8)
// load, and what Dir writes is byte for byte what Python would write for the same dict.
func TestDirReadsPythonFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, fixture := range []string{"default.json", "indent_utf8.json"} {
		t.Run(fixture, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyFixture(t, fixture, dir)
			d := openDir(t, dir)
			got, err := d.Load(ctx, "wkAbCdEf0123456789")
			require.NoError(t, err)
			require.Equal(t, "4gw7MepFLfgF2VC5npN", got)
			got, err = d.Load(ctx, "wk中文账号")
			require.NoError(t, err)
			require.Equal(t, "游标-😀", got)

			require.NoError(t, d.Save(ctx, "wkAbCdEf0123456789", "4gw7MepFLfgF2VC5npN"))
			written, err := os.ReadFile(filepath.Join(dir, cursor.CursorFileName))
			require.NoError(t, err)
			want, err := os.ReadFile(filepath.Join("testdata", "python", "default.json"))
			require.NoError(t, err)
			require.Equal(t, string(want), string(written), "same bytes as Python's json.dump")
		})
	}
}

func TestDirPreservesUnknownKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	copyFixture(t, "extra_keys.json", dir)
	d := openDir(t, dir)

	got, err := d.Load(ctx, "wkNull")
	require.NoError(t, err, "null means no cursor")
	require.Empty(t, got)
	_, err = d.Load(ctx, "wkNum")
	require.ErrorIs(t, err, cursor.ErrCorrupt, "a number is not a cursor")
	require.Contains(t, err.Error(), filepath.Join(dir, cursor.CursorFileName))
	require.Contains(t, err.Error(), "wkNum")
	_, err = d.Load(ctx, "_meta")
	require.ErrorIs(t, err, cursor.ErrCorrupt)

	require.NoError(t, d.Save(ctx, "wkA", "acur2"))
	require.NoError(t, d.Save(ctx, "wkNew", "new-cursor"))
	written, err := os.ReadFile(filepath.Join(dir, cursor.CursorFileName))
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, cursor.CursorFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "the rewrite keeps the mode the other program chose")
	want, err := os.ReadFile(filepath.Join("testdata", "python", "extra_keys_after_save.json"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(written))

	require.NoError(t, d.Close())
	d2 := openDir(t, dir)
	for k, v := range map[string]string{"wkA": "acur2", "wkZ": "zcur", "wkNew": "new-cursor"} {
		got, err := d2.Load(ctx, k)
		require.NoError(t, err)
		require.Equal(t, v, got)
	}
}

func TestDirCorruptCursorFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, content string }{
		{"empty", ""},
		{"whitespace", " \n"},
		{"garbage", "not json"},
		{"truncated", `{"wkA": "cur`},
		{"array", `["wkA", "c"]`},
		{"null", `null`},
		{"string", `"wkA"`},
		{"trailing data", `{"wkA": "c"} {}`},
		{"bad escape", `{"wkA": "\x"}`},
		{"NUL bytes (crash of a non-atomic writer)", "\x00\x00\x00\x00"},
		{"too large", `{"k": "` + strings.Repeat("x", 16<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, cursor.CursorFileName)
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o600))
			d, err := cursor.OpenDir(dir)
			require.ErrorIs(t, err, cursor.ErrCorrupt)
			require.Nil(t, d)
			require.Contains(t, err.Error(), path, "the error names the file")
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, tc.content, string(after), "a corrupt file is left as it was")
			// The failed open released the lock.
			openDir(t, t.TempDir())
			require.NoError(t, os.Remove(path))
			d2 := openDir(t, dir)
			require.NoError(t, d2.Close())
		})
	}
}

func TestDirSaveIsAtomicAndLeavesNoTemp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	// A temp file left by a crash in the middle of a Save is removed on open; the real file is untouched.
	stale := filepath.Join(dir, "."+cursor.CursorFileName+".abc123.tmp")
	require.NoError(t, os.WriteFile(stale, []byte(`{"wkA": "half`), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, cursor.CursorFileName), []byte(`{"wkA": "old"}`), 0o600))
	d := openDir(t, dir)
	require.NoFileExists(t, stale)
	got, err := d.Load(ctx, "wkA")
	require.NoError(t, err)
	require.Equal(t, "old", got)

	for i := range 20 {
		require.NoError(t, d.Save(ctx, "wkA", fmt.Sprintf("c%d", i)))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{cursor.CursorFileName, cursor.JournalFileName}, names)
	data, err := os.ReadFile(filepath.Join(dir, cursor.CursorFileName))
	require.NoError(t, err)
	require.Equal(t, `{"wkA": "c19"}`, string(data))

	fresh := t.TempDir()
	d2 := openDir(t, fresh)
	require.NoError(t, d2.Save(ctx, "wkA", "c"))
	st, err := os.Stat(filepath.Join(fresh, cursor.CursorFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a new file is private")
}

func TestDirSaveFailureKeepsPreviousValue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d := openDir(t, dir)
	require.NoError(t, d.Save(ctx, "wkA", "good"))
	require.NoError(t, os.RemoveAll(dir)) // every write into the directory now fails

	err := d.Save(ctx, "wkA", "lost")
	require.Error(t, err)
	require.Contains(t, err.Error(), dir)
	got, err := d.Load(ctx, "wkA")
	require.NoError(t, err)
	require.Equal(t, "good", got, "a failed Save must not change what Load returns")
}

func journalPath(dir string) string { return filepath.Join(dir, cursor.JournalFileName) }

func writeJournal(t *testing.T, dir string, lines ...string) {
	t.Helper()
	require.NoError(t, os.WriteFile(journalPath(dir), []byte(strings.Join(lines, "")), 0o600))
}

func rec(at time.Time, key, id string) string {
	return fmt.Sprintf(`{"t":%d,"k":%q,"m":%q}`+"\n", at.UnixMilli(), key, id)
}

func TestDirTornJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ name, tail string }{
		{"cut mid-record", `{"t":17414`},
		{"cut before newline", strings.TrimSuffix(rec(epoch, "wk", "m9"), "\n")},
		{"zero-filled tail", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"over-long garbage without newline", strings.Repeat("x", 200_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			good := rec(epoch, "wk", "m1") + rec(epoch, "wk", "m2")
			writeJournal(t, dir, good, tc.tail)
			clock := cursortest.NewClock(epoch.Add(time.Minute))
			d := openDir(t, dir, cursor.WithClock(clock.Now))
			got, err := d.Done(ctx, "wk", "m1", "m2", "m9")
			require.NoError(t, err)
			require.Equal(t, []bool{true, true, false}, got, "complete lines are kept, the torn one is not")

			data, err := os.ReadFile(journalPath(dir))
			require.NoError(t, err)
			require.Equal(t, good, string(data), "the torn tail is truncated away")

			require.NoError(t, d.MarkDone(ctx, "wk", "m3"))
			require.NoError(t, d.Close())
			d2 := openDir(t, dir, cursor.WithClock(clock.Now))
			got, err = d2.Done(ctx, "wk", "m1", "m2", "m3")
			require.NoError(t, err)
			require.Equal(t, []bool{true, true, true}, got, "records appended after the repair are intact")
		})
	}
}

func TestDirCorruptJournal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, bad string }{
		{"garbage", "garbage\n"},
		{"not an object", "[1,2]\n"},
		{"missing time", `{"k":"wk","m":"m"}` + "\n"},
		{"missing msgid", `{"t":1,"k":"wk"}` + "\n"},
		{"over-long line", strings.Repeat("x", 200_000) + "\n"},
		{"garbage before a line damaged by a power loss", "garbage\n\x00\x00\x00garbage\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeJournal(t, dir, rec(epoch, "wk", "m1"), tc.bad, rec(epoch, "wk", "m2"))
			_, err := cursor.OpenDir(dir)
			require.ErrorIs(t, err, cursor.ErrCorrupt)
			require.Contains(t, err.Error(), journalPath(dir))
			require.Contains(t, err.Error(), "line 2")
		})
	}
}

// compactionRetention is the retention of compactionDir.
const compactionRetention = 10 * time.Hour

// compactionDir returns a directory for a compaction test, its clock and the options to open it with.
func compactionDir(t *testing.T) (string, *cursortest.Clock, []cursor.Option) {
	clock := cursortest.NewClock(epoch)
	return t.TempDir(), clock, []cursor.Option{
		cursor.WithClock(clock.Now), cursor.WithRetention(compactionRetention), cursor.WithJournalSync(false),
	}
}

func TestDirJournalCompaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, clock, opts := compactionDir(t)
	const retention = compactionRetention
	d := openDir(t, dir, opts...)

	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	old, young := ids("old-", 5000), ids("young-", 1000)
	require.NoError(t, d.MarkDone(ctx, "wk", old...))
	clock.Advance(retention * 3 / 4)
	require.NoError(t, d.MarkDone(ctx, "wk", young...))
	require.Equal(t, 6000, countLines(t, dir), "nothing to compact while all marks are live")

	clock.Advance(retention / 2) // old: 1.25×retention, young: 0.5×retention
	require.NoError(t, d.MarkDone(ctx, "wk", "last"))
	require.Equal(t, 1001, countLines(t, dir), "compaction keeps exactly the live marks")

	check := func(d *cursor.Dir) {
		got, err := d.Done(ctx, "wk", append(append([]string{"last"}, young...), old...)...)
		require.NoError(t, err)
		for i, ok := range got {
			require.Equal(t, i <= len(young), ok, "index %d", i)
		}
	}
	check(d)
	require.NoError(t, d.MarkDone(ctx, "wk", "after-compaction"))
	require.NoError(t, d.Close())
	d2 := openDir(t, dir, opts...)
	check(d2)
	got, err := d2.Done(ctx, "wk", "after-compaction")
	require.NoError(t, err)
	require.Equal(t, []bool{true}, got, "appends after compaction go to the new journal")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp files (no cursor saved yet either)")
}

// Opening a journal that is mostly expired compacts it at once.
func TestDirCompactsOnOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(rec(epoch, "wk", fmt.Sprintf("old-%d", i)))
	}
	b.WriteString(rec(epoch.Add(5*24*time.Hour), "wk", "fresh"))
	writeJournal(t, dir, b.String())
	clock := cursortest.NewClock(epoch.Add(5*24*time.Hour + time.Hour))
	d := openDir(t, dir, cursor.WithClock(clock.Now))
	require.Equal(t, 1, countLines(t, dir))
	got, err := d.Done(ctx, "wk", "fresh", "old-1")
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, got)
}

func countLines(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(journalPath(dir))
	require.NoError(t, err)
	return bytes.Count(data, []byte("\n"))
}

func TestDirCloseEndsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := cursor.OpenDir(dir)
	require.NoError(t, err)
	lease, err := d.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	require.True(t, isClosed(lease.Done()))
	require.ErrorIs(t, lease.Err(), cursor.ErrLeaseLost, "a store that closed can save nothing more")
	require.ErrorIs(t, lease.Release(ctx), cursor.ErrLeaseLost)

	requireClosed(t, d, lease)
	require.NoError(t, d.Close(), "Close is idempotent")

	d2 := openDir(t, dir)
	require.NoError(t, d2.Close())
}

func TestMemoryClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := cursor.NewMemory()
	lease, err := m.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	require.ErrorIs(t, lease.Err(), cursor.ErrLeaseLost)
	requireClosed(t, m, lease)
	require.NoError(t, m.Close())
}

// requireClosed checks that every method of s, and every write of lease (a holding from before Close),
// returns ErrClosed.
func requireClosed(t *testing.T, s cursor.State, lease cursor.Lease) {
	t.Helper()
	ctx := context.Background()
	errs := map[string]error{
		"Save":           s.Save(ctx, "wk", "c"),
		"MarkDone":       s.MarkDone(ctx, "wk", "m"),
		"lease Save":     lease.Save(ctx, "c"),
		"lease SetMeta":  lease.SetMeta(ctx, "n", "v"),
		"lease MarkDone": lease.MarkDone(ctx, "m"),
		"lease PutReply": lease.PutReply(ctx, "m", []byte("r")),
	}
	_, errs["Load"] = s.Load(ctx, "wk")
	_, errs["Done"] = s.Done(ctx, "wk", "m")
	_, errs["Lock"] = s.Lock(ctx, "wk", time.Minute)
	_, errs["LoadMeta"] = s.LoadMeta(ctx, "wk", "n")
	_, errs["Lookup"] = s.Lookup(ctx, "wk", "m")
	_, errs["Accounts"] = s.Accounts(ctx)
	for name, err := range errs {
		require.ErrorIs(t, err, cursor.ErrClosed, name)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
