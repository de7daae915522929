package cursor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Dir is the embedded default: a Store, Dedup and Locker kept in one directory, for a bot that runs as one
// process.
//
//   - Cursors live in <dir>/wechatcom_kf_cursors.json ([CursorFileName]), the file chatgpt-on-wechat's
//     wechatcom_kf channel writes. Each Save rewrites it atomically: a temp file in the same directory,
//     fsync, rename over the old file, fsync of the directory. Keys Dir does not know are preserved.
//   - Done msgids are appended to <dir>/wechatcom_kf_done.jsonl ([JournalFileName]) and held in memory for
//     the retention. The journal is compacted (rewritten atomically with only live entries) when it holds
//     more than twice as many lines as live entries. A last line cut short by a crash is dropped on open.
//   - The directory is flocked for the life of the Dir: a second process (or a second OpenDir in this
//     process) gets [ErrDirLocked] at once. Leases are therefore only needed between goroutines, and are
//     kept in memory.
//
// A cursor file or journal that cannot be decoded makes OpenDir fail with [ErrCorrupt] naming the file; it is
// never read as empty.
//
// Safe for concurrent use. Close releases the lock.
type Dir struct {
	cfg         config
	dir         string
	cursorPath  string
	journalPath string
	dirf        *os.File // the directory itself: holds the flock, fsynced after renames
	leases      *leaseTable
	closed      atomic.Bool

	saveMu  sync.Mutex   // serializes Save: each rewrites the whole file
	mu      sync.RWMutex // guards cursors
	cursors map[string]cursorValue

	jmu        sync.Mutex // serializes journal appends and compaction
	journal    *os.File
	jsize      int64  // bytes in the journal
	jlines     int    // records in the journal
	jerr       error  // set when the journal's state is unknown: MarkDone refuses until reopened
	jgen       uint64 // appends so far; a MarkDone waits until syncGen covers its own
	compactGen uint64 // jgen at the last compaction, which left everything before it on disk

	syncMu     sync.Mutex // group commit: one fsync at a time covers every append made before it
	syncGen    uint64     // appends known to be on disk; guarded by syncMu
	compactMin int        // no compaction below this many lines
	nextTry    int        // after a failed compaction, wait until jlines reaches this

	dmu  sync.Mutex // guards done
	done msgSet
}

var _ State = (*Dir)(nil)

// defaultCompactMin is the journal size (in lines) below which compaction is not worth a rewrite.
const defaultCompactMin = 4096

// OpenDir opens (creating it with mode 0700 if missing) the state directory dir, takes its exclusive lock and
// loads the cursor file and the done-journal. Options: [WithClock], [WithRetention], [WithLogger],
// [WithJournalSync].
//
// Errors: [ErrDirLocked] if another process or Dir holds dir; [ErrCorrupt] (naming the file) if the cursor file
// or a complete journal line cannot be decoded; otherwise the I/O error, wrapped with the path.
func OpenDir(dir string, opts ...Option) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory", ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cursor: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("cursor: create %s: %w", abs, err)
	}
	dirf, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("cursor: open %s: %w", abs, err)
	}
	locked, err := lockDir(dirf)
	if !locked {
		_ = dirf.Close()
		if err != nil {
			return nil, fmt.Errorf("cursor: lock %s: %w", abs, err)
		}
		return nil, fmt.Errorf("cursor: %s is in use (another process, or another open Dir in this process, holds its lock): %w", abs, ErrDirLocked)
	}
	cfg := newConfig(opts)
	d := &Dir{
		cfg:         cfg,
		dir:         abs,
		cursorPath:  filepath.Join(abs, CursorFileName),
		journalPath: filepath.Join(abs, JournalFileName),
		dirf:        dirf,
		compactMin:  defaultCompactMin,
		done:        newMsgSet(cfg.retention.Milliseconds()),
	}
	d.leases = newLeaseTable(cfg.now, cfg.logger, d)
	if err := d.load(); err != nil {
		if d.journal != nil {
			_ = d.journal.Close()
		}
		_ = unlockDir(dirf)
		_ = dirf.Close()
		return nil, err
	}
	return d, nil
}

func (d *Dir) load() error {
	d.removeStaleTemps()

	cursors, err := readCursorFile(d.cursorPath)
	if err != nil {
		return err
	}
	d.cursors = cursors

	f, err := os.OpenFile(d.journalPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cursor: open %s: %w", d.journalPath, err)
	}
	d.journal = f
	now := d.cfg.now().UnixMilli()
	scan, err := parseJournal(f, func(at int64, key, id string) {
		if now-at < d.done.retention {
			d.done.add(key, id, at, nil)
		}
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("cursor: %s: %w", d.journalPath, err)
		}
		return fmt.Errorf("cursor: read %s: %w", d.journalPath, err)
	}
	d.done.expire(now)
	d.jsize, d.jlines = scan.good, scan.lines
	if scan.torn > 0 {
		if err := f.Truncate(scan.good); err != nil {
			return fmt.Errorf("cursor: drop torn tail of %s: %w", d.journalPath, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cursor: sync %s: %w", d.journalPath, err)
		}
		d.cfg.logger.Warn("cursor: dropped a torn last line of the done-journal (a write cut short by a crash)",
			"file", d.journalPath, "bytes", scan.torn)
	}
	if d.needCompact() {
		d.compactLocked(now)
	}
	return nil
}

func readCursorFile(path string) (map[string]cursorValue, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return make(map[string]cursorValue), nil
	}
	if err != nil {
		return nil, fmt.Errorf("cursor: open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCursorFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cursor: read %s: %w", path, err)
	}
	if len(data) > maxCursorFileSize {
		return nil, fmt.Errorf("cursor: %s: %w: larger than %d bytes", path, ErrCorrupt, maxCursorFileSize)
	}
	m, err := parseCursorFile(data)
	if err != nil {
		return nil, fmt.Errorf("cursor: %s: %w: %w", path, ErrCorrupt, err)
	}
	return m, nil
}

// Path returns the absolute path of the state directory.
func (d *Dir) Path() string { return d.dir }

// Load implements [Store]. The value comes from memory (the file is read once, by OpenDir). A value in the
// file that is neither a string nor null is reported as [ErrCorrupt] naming the file and the key.
func (d *Dir) Load(ctx context.Context, openKfID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return "", err
	}
	return d.get(openKfID)
}

// LoadMeta implements [State]: the value is the string under "<open_kfid>#wxkf_<name>" in the cursor file.
func (d *Dir) LoadMeta(ctx context.Context, openKfID, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return "", err
	}
	if err := checkMetaName(name); err != nil {
		return "", err
	}
	return d.get(metaKey(openKfID, name))
}

// get returns the string under key in the cursor file.
func (d *Dir) get(key string) (string, error) {
	d.mu.RLock()
	v, ok := d.cursors[key]
	d.mu.RUnlock()
	if d.closed.Load() {
		return "", ErrClosed
	}
	switch {
	case !ok:
		return "", nil
	case v.raw == nil:
		return v.s, nil
	case string(v.raw) == "null":
		return "", nil
	}
	return "", fmt.Errorf("cursor: %s: %w: the value of %q is not a string", d.cursorPath, ErrCorrupt, key)
}

// Accounts implements [State]: the keys of the cursor file that hold a string, with the metadata suffix
// ("#wxkf_<name>") cut off, each once.
func (d *Dir) Accounts(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, ErrClosed
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return accounts(func(yield func(string) bool) {
		for k, v := range d.cursors {
			if v.raw == nil && !yield(k) {
				return
			}
		}
	}), nil
}

// Save implements [Store]: the whole cursor file is rewritten atomically (temp file, fsync, rename, directory
// fsync) before Save returns nil. If the rewrite fails, Load keeps returning the previous value.
func (d *Dir) Save(ctx context.Context, openKfID, cursor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkCursor(cursor); err != nil {
		return err
	}
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if d.closed.Load() {
		return ErrClosed
	}
	return d.setLocked("save cursor", openKfID, cursor)
}

// setFenced is Save or SetMeta through a lease: the fence is checked under saveMu, which orders every
// rewrite of the cursor file.
func (d *Dir) setFenced(l *localLease, op, key, value string) error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	if d.closed.Load() {
		return ErrClosed
	}
	if err := l.fence(op); err != nil {
		return err
	}
	return d.setLocked(op, key, value)
}

// setLocked rewrites the cursor file with key set to value. d.saveMu held.
func (d *Dir) setLocked(op, key, value string) error {
	// Only setLocked changes the map and it runs under saveMu, so a read lock gives a consistent snapshot.
	d.mu.RLock()
	next := make(map[string]cursorValue, len(d.cursors)+1)
	for k, v := range d.cursors {
		next[k] = v
	}
	d.mu.RUnlock()
	next[key] = cursorValue{s: value}

	renamed, err := d.writeAtomic(d.cursorPath, encodeCursorFile(next))
	if renamed {
		d.mu.Lock()
		d.cursors[key] = cursorValue{s: value}
		d.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("cursor: %s of %q to %s: %w", op, key, d.cursorPath, err)
	}
	return nil
}

// writeAtomic replaces path with data: temp file in the same directory, fsync, rename, directory fsync.
// renamed reports whether path now has the new content (an error after that is the directory fsync).
func (d *Dir) writeAtomic(path string, data []byte) (renamed bool, err error) {
	f, err := d.createTemp(path)
	if err != nil {
		return false, err
	}
	if st, err := os.Stat(path); err == nil {
		// Keep the mode of a file another program (chatgpt-on-wechat: 0644) created.
		_ = f.Chmod(st.Mode().Perm())
	}
	if err := writeSyncClose(f, data); err != nil {
		_ = os.Remove(f.Name())
		return false, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return false, err
	}
	if err := syncDir(d.dirf); err != nil {
		return true, fmt.Errorf("sync directory %s: %w", d.dir, err)
	}
	return true, nil
}

func writeSyncClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// createTemp creates an empty, exclusive temp file for path in its directory, opened for appending. The name
// starts with "." + the base name and ends with ".tmp"; leftovers of a crash are removed by the next OpenDir.
func (d *Dir) createTemp(path string) (*os.File, error) {
	base := filepath.Base(path)
	for range 100 {
		name := filepath.Join(d.dir, "."+base+"."+strconv.FormatUint(rand.Uint64(), 36)+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a temp file in %s", d.dir)
}

func (d *Dir) removeStaleTemps() {
	for _, base := range []string{CursorFileName, JournalFileName} {
		matches, _ := filepath.Glob(filepath.Join(d.dir, "."+base+".*.tmp"))
		for _, m := range matches {
			if err := os.Remove(m); err == nil {
				d.cfg.logger.Info("cursor: removed a temp file left by a crash", "file", m)
			}
		}
	}
}

// MarkDone implements [Dedup]: the marks are appended to the journal (and fsynced, unless
// WithJournalSync(false)) before they count as done.
func (d *Dir) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	if len(msgIDs) == 0 {
		return nil
	}
	return d.markDone(nil, openKfID, msgIDs)
}

// markDoneFenced is MarkDone through a lease: the fence is checked under jmu, which orders every append.
func (d *Dir) markDoneFenced(l *localLease, msgIDs []string) error {
	return d.markDone(l, l.key, msgIDs)
}

func (d *Dir) markDone(l *localLease, openKfID string, msgIDs []string) error {
	gen, err := d.appendMarks(l, openKfID, msgIDs)
	if err != nil || !d.cfg.journalSync {
		return err
	}
	return d.syncJournal(gen)
}

// appendMarks appends the marks to the journal and the in-memory set, and returns the append's
// generation for syncJournal. If l is not nil, nothing is written unless it holds its key.
func (d *Dir) appendMarks(l *localLease, openKfID string, msgIDs []string) (uint64, error) {
	d.jmu.Lock()
	defer d.jmu.Unlock()
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if l != nil {
		if err := l.fence("mark done"); err != nil {
			return 0, err
		}
	}
	if d.jerr != nil {
		return 0, fmt.Errorf("cursor: journal %s is unusable after an earlier failure (reopen the Dir): %w", d.journalPath, d.jerr)
	}
	now := d.cfg.now().UnixMilli()
	buf := make([]byte, 0, len(msgIDs)*(len(openKfID)+64))
	for _, id := range msgIDs {
		buf = appendJournalRecord(buf, now, openKfID, id)
	}
	n, err := d.journal.Write(buf)
	if err != nil {
		if n > 0 {
			// Do not leave a partial record for the next append to run into.
			if terr := d.journal.Truncate(d.jsize); terr != nil {
				d.jerr = terr
			}
		}
		return 0, fmt.Errorf("cursor: append to %s: %w", d.journalPath, err)
	}
	d.jsize += int64(n)
	d.jlines += len(msgIDs)
	d.jgen++
	d.dmu.Lock()
	d.done.expire(now)
	for _, id := range msgIDs {
		d.done.add(openKfID, id, now, nil)
	}
	d.dmu.Unlock()
	if d.needCompact() {
		d.compactLocked(now)
	}
	return d.jgen, nil
}

// syncJournal returns once the append of generation gen is on disk. It is a group commit: the
// caller that gets syncMu fsyncs once for every append made so far, and the callers queued behind
// it find their appends already covered. Appends go on while the fsync runs.
func (d *Dir) syncJournal(gen uint64) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	if d.syncGen >= gen {
		return nil
	}
	d.jmu.Lock()
	f, target, compacted := d.journal, d.jgen, d.compactGen
	d.jmu.Unlock()
	if compacted >= gen { // a compaction rewrote (and fsynced) the journal after this append
		d.syncGen = max(d.syncGen, compacted)
		return nil
	}
	if err := f.Sync(); err != nil {
		d.jmu.Lock()
		compacted = d.compactGen
		d.jmu.Unlock()
		if compacted >= gen { // f was replaced by a compaction while syncing: the marks are in the new file
			d.syncGen = max(d.syncGen, compacted)
			return nil
		}
		return fmt.Errorf("cursor: sync %s: %w", d.journalPath, err)
	}
	d.syncGen = target
	return nil
}

// needCompact reports whether the journal holds enough dead lines to be worth a rewrite. d.jmu held.
func (d *Dir) needCompact() bool {
	if d.jlines < d.compactMin || d.jlines < d.nextTry {
		return false
	}
	d.dmu.Lock()
	live := d.done.live
	d.dmu.Unlock()
	return d.jlines > 2*live
}

// compactLocked rewrites the journal with only the live marks, atomically. A failure is logged and leaves the
// old journal in use (it is still correct, only longer). d.jmu held.
func (d *Dir) compactLocked(now int64) {
	d.dmu.Lock()
	d.done.expire(now)
	live := d.done.live
	buf := make([]byte, 0, live*64)
	d.done.each(func(e msgEntry, _ []byte) { buf = appendJournalRecord(buf, e.at, e.key, e.id) })
	d.dmu.Unlock()

	f, err := d.createTemp(d.journalPath)
	if err == nil {
		if _, err = f.Write(buf); err == nil {
			err = f.Sync()
		}
		if err == nil {
			err = os.Rename(f.Name(), d.journalPath)
		}
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}
	if err != nil {
		d.nextTry = 2 * d.jlines
		d.cfg.logger.Warn("cursor: done-journal compaction failed; keeping the old journal", "file", d.journalPath, "err", err)
		return
	}
	if err := syncDir(d.dirf); err != nil {
		d.cfg.logger.Warn("cursor: sync of the state directory after compaction failed", "dir", d.dir, "err", err)
	}
	before := d.jlines
	_ = d.journal.Close()
	d.journal = f
	d.jsize, d.jlines, d.nextTry = int64(len(buf)), live, 0
	d.compactGen = d.jgen
	d.cfg.logger.Info("cursor: compacted the done-journal", "file", d.journalPath, "lines_before", before, "lines_after", live)
}

// Done implements [Dedup].
func (d *Dir) Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return nil, err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, ErrClosed
	}
	now := d.cfg.now().UnixMilli()
	out := make([]bool, len(msgIDs))
	d.dmu.Lock()
	d.done.expire(now)
	for i, id := range msgIDs {
		out[i] = d.done.has(openKfID, id, now)
	}
	d.dmu.Unlock()
	return out, nil
}

var errNotImplemented = errors.New("cursor: Dir: reply records are not implemented yet")

func (d *Dir) putReplyFenced(*localLease, string, []byte) error { return errNotImplemented }

// Lookup implements [State]. Not implemented yet: it returns an error.
func (d *Dir) Lookup(context.Context, string, ...string) ([]Status, error) {
	return nil, errNotImplemented
}

// Lock implements [Locker] between goroutines of this process (the directory lock keeps other processes out).
func (d *Dir) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return d.leases.lock(ctx, key, ttl)
}

// Close ends all leases (holders see [ErrLeaseLost]), waits for in-flight Save and MarkDone calls, syncs and
// closes the journal and releases the directory lock. Afterwards every method returns [ErrClosed]. Close is
// idempotent.
func (d *Dir) Close() error {
	if !d.closed.CompareAndSwap(false, true) {
		return nil
	}
	d.leases.close()
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.jmu.Lock()
	defer d.jmu.Unlock()
	var errs []error
	if err := d.journal.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("cursor: sync %s: %w", d.journalPath, err))
	}
	if err := d.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cursor: close %s: %w", d.journalPath, err))
	}
	if err := unlockDir(d.dirf); err != nil {
		errs = append(errs, fmt.Errorf("cursor: unlock %s: %w", d.dir, err))
	}
	if err := d.dirf.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cursor: close %s: %w", d.dir, err))
	}
	return errors.Join(errs...)
}
