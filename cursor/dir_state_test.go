package cursor_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/cursor"
	"github.com/wxkf/wxkf/cursor/cursortest"
)

// logRecords is a slog.Handler that keeps what a store logs, for tests that check its warnings.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecords) WithGroup(string) slog.Handler            { return r }

func (r *logRecords) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// warnings returns the text of each warning: its message and attributes.
func (r *logRecords) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level != slog.LevelWarn {
			continue
		}
		text := rec.Message
		rec.Attrs(func(a slog.Attr) bool {
			text += " " + a.String()
			return true
		})
		out = append(out, text)
	}
	return out
}

func (r *logRecords) logger() *slog.Logger { return slog.New(r) }

func replyRec(at time.Time, key, id string, rec []byte) string {
	return fmt.Sprintf(`{"t":%d,"k":%q,"r":%q,"b":%q}`+"\n", at.UnixMilli(), key, id, base64.StdEncoding.EncodeToString(rec))
}

// After a power loss a journal can hold a complete line that starts with NUL bytes: the file's size was
// extended but its data blocks were never written. OpenDir used to fail with ErrCorrupt; now such a line is
// damage, not corruption: its record is used if what follows the NULs decodes, else the line is skipped with
// one warning, and the journal is rewritten without the NULs.
func TestDirJournalZeroFilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nuls := func(n int) string { return strings.Repeat("\x00", n) }
	for _, tc := range []struct {
		name    string
		damaged string
		want    []bool // m1, m2, m3
	}{
		{"zeros then a whole record", nuls(4096) + rec(epoch, "wk", "m2"), []bool{true, true, true}},
		{"zeros longer than any line, then a record", nuls(1<<20) + rec(epoch, "wk", "m2"), []bool{true, true, true}},
		{"zeros then the end of a record", nuls(30) + `,"k":"wk","m":"m2"}` + "\n", []bool{true, false, true}},
		{"a record cut by zeros", `{"t":1741944413000,"k":"w` + nuls(100) + "\n", []bool{true, false, true}},
		{"only zeros", nuls(512) + "\n", []bool{true, false, true}},
		{"zeros longer than any line, then garbage", nuls(1<<20) + "garbage\n", []bool{true, false, true}},
		{"zeros then a reply record", nuls(8) + replyRec(epoch, "wk", "m2", []byte("r")), []bool{true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeJournal(t, dir, rec(epoch, "wk", "m1"), tc.damaged, rec(epoch, "wk", "m3"))
			clock := cursortest.NewClock(epoch.Add(time.Minute))
			logs := &logRecords{}
			d := openDir(t, dir, cursor.WithClock(clock.Now), cursor.WithLogger(logs.logger()))
			got, err := d.Done(ctx, "wk", "m1", "m2", "m3")
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			warnings := logs.warnings()
			require.Len(t, warnings, 1, "one warning for the damaged journal")
			require.Contains(t, warnings[0], journalPath(dir))

			data, err := os.ReadFile(journalPath(dir))
			require.NoError(t, err)
			require.NotContains(t, string(data), "\x00", "the journal is rewritten without the damage")
			require.NoError(t, d.MarkDone(ctx, "wk", "m4"))
			require.NoError(t, d.Close())

			logs2 := &logRecords{}
			d2 := openDir(t, dir, cursor.WithClock(clock.Now), cursor.WithLogger(logs2.logger()))
			got, err = d2.Done(ctx, "wk", "m1", "m2", "m3", "m4")
			require.NoError(t, err)
			require.Equal(t, append(tc.want, true), got)
			require.Empty(t, logs2.warnings(), "the repair is done once")
			st := lookupDir(t, d2, "m2")
			if strings.Contains(tc.name, "reply") {
				require.Equal(t, []byte("r"), st.Reply, "the reply record after the zeros is kept")
			}
		})
	}
}

func lookupDir(t *testing.T, d *cursor.Dir, id string) cursor.Status {
	t.Helper()
	st, err := d.Lookup(context.Background(), "wk", id)
	require.NoError(t, err)
	return st[0]
}

// Reply records live in the done-journal as lines of their own kind: replayed on open, superseded by a later
// done mark of the same msgid, dropped after the retention, and kept by compaction.
func TestDirReplyRecordsInJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	clock := cursortest.NewClock(epoch)
	const retention = 10 * time.Hour
	binary := []byte{0, 1, 0xfe, 0xff, '\n', '"'}
	writeJournal(t, dir,
		replyRec(epoch.Add(-retention), "wk", "expired", []byte("x")),
		replyRec(epoch, "wk", "kept", binary),
		replyRec(epoch, "wk", "replaced", []byte("first")),
		replyRec(epoch, "wk", "superseded", []byte("x")),
		rec(epoch, "wk", "superseded"),
		replyRec(epoch, "wk", "replaced", []byte("second")),
		replyRec(epoch, "wkOther", "kept", []byte("other")),
	)
	opts := []cursor.Option{cursor.WithClock(clock.Now), cursor.WithRetention(retention)}
	d := openDir(t, dir, opts...)
	st, err := d.Lookup(ctx, "wk", "expired", "kept", "replaced", "superseded")
	require.NoError(t, err)
	require.Equal(t, []cursor.Status{{}, {Reply: binary}, {Reply: []byte("second")}, {Done: true}}, st)

	// What PutReply appends is the same kind of line.
	l, err := d.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.PutReply(ctx, "new", []byte("hello")))
	require.NoError(t, l.Release(ctx))
	data, err := os.ReadFile(journalPath(dir))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(data), replyRec(epoch, "wk", "new", []byte("hello"))), "%s", data)

	clock.Advance(retention - time.Minute)
	require.Equal(t, []byte("hello"), lookupDir(t, d, "new").Reply)
	clock.Advance(time.Minute)
	require.Nil(t, lookupDir(t, d, "new").Reply, "dropped after the retention")
}

// Compaction keeps the live reply records and counts them as live lines.
func TestDirCompactionKeepsReplies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir, clock, opts := compactionDir(t)
	d := openDir(t, dir, opts...)
	l, err := d.Lock(ctx, "wk", time.Hour)
	require.NoError(t, err)
	for i := range 3000 {
		require.NoError(t, l.PutReply(ctx, fmt.Sprintf("r%d", i), fmt.Appendf(nil, "reply %d", i)))
	}
	require.NoError(t, l.Release(ctx))
	old := make([]string, 5000)
	for i := range old {
		old[i] = fmt.Sprintf("old-%d", i)
	}
	require.NoError(t, d.MarkDone(ctx, "wk", old...))
	const retention = compactionRetention
	require.Equal(t, 8000, countLines(t, dir), "3000 records and 5000 marks, all live: nothing to compact")

	// The marks expire, the records are refreshed: compaction keeps the 3000 records and the new mark.
	clock.Advance(retention / 2)
	l, err = d.Lock(ctx, "wk", time.Hour)
	require.NoError(t, err)
	for i := range 3000 {
		require.NoError(t, l.PutReply(ctx, fmt.Sprintf("r%d", i), fmt.Appendf(nil, "reply %d again", i)))
	}
	require.NoError(t, l.Release(ctx))
	clock.Advance(retention/2 + time.Minute)
	require.NoError(t, d.MarkDone(ctx, "wk", "last"))
	require.Equal(t, 3001, countLines(t, dir))

	require.NoError(t, d.Close())
	d2 := openDir(t, dir, opts...)
	st, err := d2.Lookup(ctx, "wk", "r0", "r2999", "last", "old-0")
	require.NoError(t, err)
	require.Equal(t, []cursor.Status{
		{Reply: []byte("reply 0 again")}, {Reply: []byte("reply 2999 again")}, {Done: true}, {},
	}, st)
}

// Metadata is kept in the cursor file under "<open_kfid>#wxkf_<name>", the key kf wrote before metadata had
// methods, so a file written by an earlier version is read as is and a rewrite keeps the same layout.
func TestDirMetaInCursorFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, cursor.CursorFileName),
		[]byte(`{"wkA": "acur", "wkA#wxkf_history_before": "1741944413", "wkB#wxkf_history_before": "1741944414"}`), 0o600))
	d := openDir(t, dir)
	got, err := d.LoadMeta(ctx, "wkA", "history_before")
	require.NoError(t, err)
	require.Equal(t, "1741944413", got)
	accounts, err := d.Accounts(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"wkA", "wkB"}, accounts)

	l, err := d.Lock(ctx, "wkB", time.Minute)
	require.NoError(t, err)
	require.NoError(t, l.SetMeta(ctx, "history_before", "1741944999"))
	require.NoError(t, l.Save(ctx, "bcur"))
	require.NoError(t, l.Release(ctx))
	data, err := os.ReadFile(filepath.Join(dir, cursor.CursorFileName))
	require.NoError(t, err)
	require.Equal(t, `{"wkA": "acur", "wkA#wxkf_history_before": "1741944413", "wkB": "bcur", "wkB#wxkf_history_before": "1741944999"}`, string(data))
}

// Accounts lists the keys of the cursor file that hold a cursor, not what another program keeps there.
func TestDirAccountsSkipsOtherValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyFixture(t, "extra_keys.json", dir)
	d := openDir(t, dir)
	accounts, err := d.Accounts(context.Background())
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"wkA", "wkZ"}, accounts, "no _meta object, no null, no number")
}

// A journal failure is returned by the fenced writes as by MarkDone, and nothing counts as written.
func TestDirFencedWritesReportJournalFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d := openDir(t, dir)
	l, err := d.Lock(ctx, "wk", time.Minute)
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	require.Error(t, l.Save(ctx, "c"), "the cursor file cannot be rewritten")
	got, err := d.Load(ctx, "wk")
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, l.Err(), "an I/O failure is not a lost lease")
	require.NoError(t, l.Release(ctx))
}
