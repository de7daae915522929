package cursor

import (
	"context"
	"errors"
	"time"
)

// Store keeps the sync_msg cursor of each customer-service account (open_kfid).
//
// sync_msg (doc 94670) returns a next_cursor with every page; passing it back on the next call resumes
// after that page. Without a cursor WeCom starts again from the earliest message of the last 3 days, so a lost or
// misread cursor replays up to three days of conversations. Implementations therefore never report a failure
// as "no cursor": ("", nil) from Load means that nothing was ever saved for openKfID (or that the empty cursor
// was saved); any I/O, decode or context failure is a non-nil error, and the caller must stop and retry rather
// than pull from scratch.
//
// Implementations are safe for concurrent use.
type Store interface {
	// Load returns the saved cursor for openKfID; ("", nil) means none yet. Failure is an error, never "".
	Load(ctx context.Context, openKfID string) (string, error)
	// Save durably records cursor as the resume point for openKfID, replacing any previous value. When Save
	// returns nil the value survives a crash of the process (and, for the file store, of the machine).
	Save(ctx context.Context, openKfID, cursor string) error
}

// Locker hands out leases so that only one process (replica) at a time pulls a given account: two pullers
// sharing one cursor would both dispatch the same messages and race each other's Save.
//
// Implementations are safe for concurrent use.
type Locker interface {
	// Lock blocks until the lease on key is held or ctx ends (then returns ctx.Err()). While held, the lease
	// renews itself in the background every ttl/3; if renewal fails for longer than ttl, or another holder took
	// the lease over after it expired, the lease reports the loss through Done and Err. An I/O failure while
	// trying to acquire is returned as an error (wrapped), so the caller can back off instead of blocking
	// silently. ttl must be at least a millisecond and key must be non-empty ([ErrInvalidArgument]).
	Lock(ctx context.Context, key string, ttl time.Duration) (Lease, error)
}

// Lease is one holding of a [Locker] key. For kf the key is an open_kfid, and the lease is also the only way
// the sync engine writes that account's state: every write below is fenced, so a holder that lost the lease
// (it paused past its ttl, Redis was unreachable, another replica took the account over) cannot overwrite its
// successor's work.
//
// A holder must stop working as soon as Done is closed or Err is not nil.
type Lease interface {
	// Done is closed when the lease is lost (renewal failed or expired, or it was taken over) or released.
	Done() <-chan struct{}
	// Err is nil while the lease is held; it returns ErrLeaseLost after a loss and ErrReleased after Release.
	// It reads the holder's own clock as well as the renewer's verdict: once the lease's deadline (ttl after
	// the last renewal that succeeded was sent) has passed, Err reports ErrLeaseLost at once, even before the
	// renewer has run, so a process that was paused past its ttl sees the loss at its first check after
	// resuming.
	Err() error
	// Release stops renewal and frees the key for the next holder (only if this lease still holds it). It
	// returns nil if the lease was held until now or had already been released; it returns an error wrapping
	// [ErrLeaseLost] if the lease had been lost before Release (work done since the loss may have raced with
	// another holder), and a wrapped I/O error if freeing the key failed (the key then expires after its ttl).
	Release(ctx context.Context) error

	// Key returns the key given to Lock: for kf, the open_kfid whose state the writes below change.
	Key() string
	// Token is the fencing token of this holding: greater than the token of every earlier holding of the
	// same key in the same store (a store that lost its data, such as a Redis restarted without
	// persistence, starts again from 1; [Dir] and [Memory], whose leases end with the process, count from 1
	// in each one). For logs and metrics; the writes below check the holding itself.
	Token() uint64

	// Save records cursor as Key's resume point, as [Store.Save] does, but only while this lease holds Key:
	// the check and the write are one atomic step, so once the lease was lost, taken over, expired or
	// released, Save writes nothing and returns an error wrapping [ErrLeaseLost] (or [ErrReleased]).
	Save(ctx context.Context, cursor string) error
	// SetMeta records value under name for Key (read back with [State.LoadMeta]), fenced like Save. name is
	// 1 to [MaxMetaNameLen] bytes of [a-z0-9_]; value at most [MaxCursorLen] bytes of UTF-8. An empty value
	// is stored as is (LoadMeta then returns "", as for a name never set).
	SetMeta(ctx context.Context, name, value string) error
	// MarkDone marks msgIDs of Key done, as [Dedup.MarkDone] does, and deletes their reply records
	// (PutReply), fenced like Save.
	MarkDone(ctx context.Context, msgIDs ...string) error
	// PutReply stores rec (1 to [MaxReplyLen] bytes, opaque to the store; empty is [ErrInvalidArgument],
	// so that a nil [Status.Reply] always means "no record") as the reply record of msgID of Key, replacing
	// an earlier one, fenced like Save. When PutReply returns nil the record survives a
	// crash of the process (Dir does not wait for the disk: a power loss may lose the latest records). A
	// record is kept until MarkDone of its msgID, or for the retention (as a done mark is) after its last
	// PutReply, whichever comes first.
	PutReply(ctx context.Context, msgID string, rec []byte) error
}

// State is everything kf.Channel keeps durably, for one process ([Dir], [Memory]) or for several replicas
// (package cursor/redis): cursors, done msgids, leases, per-account metadata and the reply records with which
// a rerun of a handler completes an interrupted reply instead of sending a different one. The Channel reads
// through State and writes only through a held [Lease]; the unfenced [Store.Save] and [Dedup.MarkDone] stay
// for tools and migrations.
//
// Implementations are safe for concurrent use.
type State interface {
	Store
	Dedup
	Locker
	// Accounts lists, in no particular order, every open_kfid that has a saved cursor or metadata value.
	// A Channel pulls each of them when it starts, so that a callback it answered but never pulled for is
	// not stranded by a restart.
	Accounts(ctx context.Context) ([]string, error)
	// LoadMeta returns the value saved under name for openKfID with [Lease.SetMeta]; ("", nil) means none.
	LoadMeta(ctx context.Context, openKfID, name string) (string, error)
	// Lookup reports, parallel to msgIDs, whether each is done (as [Dedup.Done]) and the reply record
	// stored for it ([Lease.PutReply]; nil when there is none). One round trip for the whole batch.
	Lookup(ctx context.Context, openKfID string, msgIDs ...string) ([]Status, error)
}

// Owed is implemented by stores shared between processes (cursor/redis): it lets a replica that answered a
// callback tell the others that a pull is owed to the account, in case it dies before pulling. A Channel
// marks an account owed before it answers a callback, clears its mark once a pull round that started after
// the mark has completed, and regularly pulls every account whose mark is older than a grace period: the
// replica that made it is gone, or stuck.
//
// Implementations are safe for concurrent use.
type Owed interface {
	// MarkOwed records, at the store's clock, that a pull is owed to openKfID, replacing an older mark, and
	// returns the mark.
	MarkOwed(ctx context.Context, openKfID string) (mark int64, err error)
	// ClearOwed removes openKfID's mark if it is still mark: a mark made since (by any process) stays.
	ClearOwed(ctx context.Context, openKfID string, mark int64) error
	// OwedOlder returns the accounts whose mark was made more than age ago, with their marks, oldest first
	// (at most 1000).
	OwedOlder(ctx context.Context, age time.Duration) ([]OwedMark, error)
}

// OwedMark is an account's mark in an [Owed] store.
type OwedMark struct {
	OpenKfID string
	Mark     int64
}

// Status is what [State.Lookup] knows of one msgid.
type Status struct {
	// Done is true when the msgid was marked done less than the retention ago.
	Done bool
	// Reply is the record last stored with [Lease.PutReply], or nil. It is nil when Done is true.
	Reply []byte
}

// Dedup remembers which msgids of an account have been handled, so that a replay of sync_msg (after a crash, a
// retried callback, or the cursor trailing in-flight messages) dispatches nothing twice.
//
// WeCom returns at most the last 3 days of messages (sync_msg, doc 94670), so an entry must be kept at least that
// long; implementations keep entries for their retention ([DefaultRetention] unless configured) measured from
// the MarkDone call, then drop them so the set stays bounded. Msgids are scoped per open_kfid.
//
// Implementations are safe for concurrent use.
type Dedup interface {
	// MarkDone records msgIDs of openKfID as handled (again refreshing their retention if already marked).
	MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error
	// Done reports, parallel to msgIDs, which are already marked done (kept ≥ 3 days, then dropped).
	Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error)
}

// DefaultRetention is how long Dedup implementations keep a done msgid unless configured otherwise: 96 hours.
//
// sync_msg without a usable cursor returns messages sent in the last 3 days (72 h, doc 94670), and an entry
// is marked done after the message was sent, so 72 h after MarkDone already covers the window. The extra 24 h is
// margin for clock differences between WeCom, the replicas and Redis, and for a message whose handler ran late
// (e.g. a backlog drained after an outage). The cost is one more day of msgids, a few MB for a busy account.
const DefaultRetention = 96 * time.Hour

// Limits on what the stores accept, so that a bad caller cannot grow a file or a Redis key without bound. WeCom
// documents cursors of at most 64 bytes and msgids longer than 32 characters (doc 94670); the limits leave
// ample room above that.
const (
	// MaxKeyLen is the maximum length in bytes of an open_kfid or a lease key.
	MaxKeyLen = 256
	// MaxCursorLen is the maximum length in bytes of a cursor passed to Save.
	MaxCursorLen = 4096
	// MaxMsgIDLen is the maximum length in bytes of one msgid passed to Dedup.
	MaxMsgIDLen = 1024
	// MaxReplyLen is the maximum length in bytes of a reply record passed to [Lease.PutReply].
	MaxReplyLen = 64 << 10
	// MaxMetaNameLen is the maximum length in bytes of a metadata name passed to [Lease.SetMeta].
	MaxMetaNameLen = 32
)

var (
	// ErrLeaseLost is returned by Lease.Err once the lease was lost: renewal failed until the lease expired, or
	// the lease expired and another holder took it. The holder must stop before saving anything.
	ErrLeaseLost = errors.New("cursor: lease lost")
	// ErrReleased is returned by Lease.Err after Release.
	ErrReleased = errors.New("cursor: lease released")
	// ErrInvalidArgument reports an argument outside the limits: an empty or over-long key, cursor, msgid,
	// metadata name or value, or reply record, or a ttl below a millisecond.
	ErrInvalidArgument = errors.New("cursor: invalid argument")
	// ErrCorrupt reports a cursor file or done-journal that cannot be decoded. The error names the file; the
	// store never treats a corrupt file as empty, since that would replay three days of messages.
	ErrCorrupt = errors.New("cursor: corrupt state file")
	// ErrDirLocked is returned by OpenDir when another process, or another open Dir in this process, holds the
	// directory's lock. The error names the directory.
	ErrDirLocked = errors.New("cursor: directory is locked by another user")
	// ErrClosed is returned by every method of a Dir or Memory after Close.
	ErrClosed = errors.New("cursor: store closed")
)
