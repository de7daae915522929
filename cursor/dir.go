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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Dir is the embedded default: a [State] kept in one directory, for a bot that runs as one process.
//
//   - Cursors live in <dir>/wechatcom_kf_cursors.json ([CursorFileName]), the file chatgpt-on-wechat's
//     wechatcom_kf channel writes. Each Save rewrites it atomically: a temp file in the same directory,
//     fsync, rename over the old file, fsync of the directory. Keys Dir does not know are preserved.
//     Metadata ([Lease.SetMeta]) is kept in the same file under "<open_kfid>#wxkf_<name>", the key under
//     which earlier versions of kf kept the skip-history boundary ("#wxkf_history_before"). [Dir.Accounts]
//     lists the keys that hold a string, metadata suffix cut off.
//   - Done msgids and reply records ([Lease.PutReply]) are appended to <dir>/wechatcom_kf_done.jsonl
//     ([JournalFileName]) and held in memory for the retention; a done mark supersedes the reply record of
//     its msgid. MarkDone returns once its lines are fsynced (one fsync covers every append made while the
//     previous one ran), unless [WithJournalSync](false); PutReply returns once its line is written to the
//     operating system (it survives a crash of the process; the next fsync takes it to disk). The journal is compacted
//     (rewritten atomically with only live entries) when it holds more than twice as many lines as live
//     entries. A last line cut short by a crash is dropped on open; a line holding NUL bytes (a power loss
//     extended the file without writing its data) is read after its leading NULs if the rest decodes,
//     else skipped, with a warning, and the journal is then rewritten without it.
//   - The directory is flocked for the life of the Dir: a second process (or a second OpenDir in this
//     process) gets [ErrDirLocked] at once. Leases are therefore only needed between goroutines, and are
//     kept in memory; their tokens count from 1 in each Dir. A fenced write is checked under the lock that
//     orders writes of its kind (the cursor-file lock for Save and SetMeta, the journal lock for MarkDone
//     and PutReply): a holding that lost its key writes nothing, and one whose check passed just before a
//     takeover completes its write before the new holder's first write of that kind can start.
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

	dmu     sync.Mutex // guards done and replies
	done    msgSet
	replies msgSet
}

var _ State = (*Dir)(nil)

// defaultCompactMin is the journal size (in lines) below which compaction is not worth a rewrite.
const defaultCompactMin = 4096

// OpenDir opens (creating it with mode 0700 if missing) the state directory dir, takes its exclusive lock and
// loads the cursor file and the done-journal. Options: [WithClock], [WithRetention], [WithLogger],
// [WithJournalSync].
//
// Errors: [ErrInvalidArgument] for an empty dir or an invalid option (nothing is created then);
// [ErrDirLocked] if another process or Dir holds dir; [ErrCorrupt] (naming the file) if the cursor file or a
// complete journal line cannot be decoded; otherwise the I/O error, wrapped with the path.
func OpenDir(dir string, opts ...Option) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory", ErrInvalidArgument)
	}
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
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
	d := &Dir{
		cfg:         cfg,
		dir:         abs,
		cursorPath:  filepath.Join(abs, CursorFileName),
		journalPath: filepath.Join(abs, JournalFileName),
		dirf:        dirf,
		compactMin:  defaultCompactMin,
		done:        newMsgSet(cfg.retention.Milliseconds()),
		replies:     newMsgSet(cfg.retention.Milliseconds()),
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
	scan, err := parseJournal(f, func(rec journalRecord) {
		if rec.R != "" {
			if now-rec.T < d.replies.retention {
				d.replies.add(rec.K, rec.R, rec.T, rec.B)
			}
			return
		}
		d.replies.remove(rec.K, rec.M) // a done mark supersedes the reply record of its msgid
		if now-rec.T < d.done.retention {
			d.done.add(rec.K, rec.M, rec.T, nil)
		}
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return fmt.Errorf("cursor: %s: %w", d.journalPath, err)
		}
		return fmt.Errorf("cursor: read %s: %w", d.journalPath, err)
	}
	d.done.expire(now)
	d.replies.expire(now)
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
	damaged := len(scan.damaged) > 0 || scan.recovered > 0
	if damaged {
		d.cfg.logger.Warn("cursor: the done-journal has lines with NUL bytes (a power loss extended the file without "+
			"writing its data); records read after stripping the NULs are kept, lines with none are skipped, "+
			"and the journal is rewritten without them",
			"file", d.journalPath, "recovered", scan.recovered, "skipped", len(scan.damaged),
			"skipped_lines", scan.damaged[:min(len(scan.damaged), 10)])
	}
	if damaged || d.needCompact() {
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
// WithJournalSync(false)) before they count as done. It also deletes the reply records of msgIDs, as
// [Lease.MarkDone] does.
func (d *Dir) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := checkBatch(ctx, openKfID, msgIDs); err != nil {
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
	return d.writeJournal(l, "mark done", len(msgIDs),
		func(buf []byte, now int64) []byte {
			for _, id := range msgIDs {
				buf = appendJournalRecord(buf, now, openKfID, id)
			}
			return buf
		},
		func(now int64) {
			d.done.expire(now)
			for _, id := range msgIDs {
				d.done.add(openKfID, id, now, nil)
				d.replies.remove(openKfID, id)
			}
		})
}

// putReplyFenced appends a reply record to the journal, like a done mark (the fence is checked under jmu),
// but returns without waiting for the fsync: the line is in the operating system, so it survives a crash of
// the process, and the next done mark's fsync (or any later one) takes it to disk. A power loss can lose the
// latest records; kf treats a reply whose record is missing as possibly cut (it never continues it with a
// different answer), so durability against power loss is a matter of completeness, not of safety, and not
// worth an fsync on the way to every reply.
func (d *Dir) putReplyFenced(l *localLease, msgID string, rec []byte) error {
	_, err := d.appendJournal(l, "put reply", 1,
		func(buf []byte, now int64) []byte { return appendReplyRecord(buf, now, l.key, msgID, rec) },
		func(now int64) {
			d.replies.expire(now)
			d.replies.add(l.key, msgID, now, slices.Clone(rec))
		})
	return err
}

// writeJournal appends lines records made by encode to the journal, applies them to the in-memory sets
// with apply (under dmu) and, with WithJournalSync(true), waits until they are on disk. If l is not nil,
// nothing is written unless it holds its key (checked under jmu).
func (d *Dir) writeJournal(l *localLease, op string, lines int, encode func(buf []byte, now int64) []byte, apply func(now int64)) error {
	gen, err := d.appendJournal(l, op, lines, encode, apply)
	if err != nil || !d.cfg.journalSync {
		return err
	}
	return d.syncJournal(gen)
}

// appendJournal is writeJournal without the fsync: it returns the append's generation for syncJournal.
func (d *Dir) appendJournal(l *localLease, op string, lines int, encode func(buf []byte, now int64) []byte, apply func(now int64)) (uint64, error) {
	d.jmu.Lock()
	defer d.jmu.Unlock()
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if l != nil {
		if err := l.fence(op); err != nil {
			return 0, err
		}
	}
	if d.jerr != nil {
		return 0, fmt.Errorf("cursor: journal %s is unusable after an earlier failure (reopen the Dir): %w", d.journalPath, d.jerr)
	}
	now := d.cfg.now().UnixMilli()
	buf := encode(make([]byte, 0, lines*128), now)
	n, err := d.journal.Write(buf)
	if err != nil {
		if n > 0 {
			// Do not leave a partial record for the next append to run into.
			if terr := d.journal.Truncate(d.jsize); terr != nil {
				d.jerr = terr
			}
		}
		return 0, fmt.Errorf("cursor: %s: append to %s: %w", op, d.journalPath, err)
	}
	d.jsize += int64(n)
	d.jlines += lines
	d.jgen++
	d.dmu.Lock()
	apply(now)
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
	live := d.done.live + d.replies.live
	d.dmu.Unlock()
	return d.jlines > 2*live
}

// compactLocked rewrites the journal with only the live marks, atomically. A failure is logged and leaves the
// old journal in use (it is still correct, only longer). d.jmu held.
func (d *Dir) compactLocked(now int64) {
	d.dmu.Lock()
	d.done.expire(now)
	d.replies.expire(now)
	live := d.done.live + d.replies.live
	buf := make([]byte, 0, live*64)
	d.done.each(func(e msgEntry, _ []byte) { buf = appendJournalRecord(buf, e.at, e.key, e.id) })
	d.replies.each(func(e msgEntry, rec []byte) { buf = appendReplyRecord(buf, e.at, e.key, e.id, rec) })
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
	return dones(d.Lookup(ctx, openKfID, msgIDs...))
}

// Lookup implements [State] from memory: the done marks and reply records of the journal.
func (d *Dir) Lookup(ctx context.Context, openKfID string, msgIDs ...string) ([]Status, error) {
	if err := checkBatch(ctx, openKfID, msgIDs); err != nil {
		return nil, err
	}
	if d.closed.Load() {
		return nil, ErrClosed
	}
	now := d.cfg.now().UnixMilli()
	d.dmu.Lock()
	defer d.dmu.Unlock()
	d.done.expire(now)
	d.replies.expire(now)
	return lookup(&d.done, &d.replies, openKfID, msgIDs, now), nil
}

// Lock implements [Locker] between goroutines of this process (the directory lock keeps other processes out).
func (d *Dir) Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	return d.leases.lock(ctx, key, ttl)
}

// Close ends all leases (holders see [ErrLeaseLost]), waits for in-flight writes, syncs and
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
