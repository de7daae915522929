package cursor

import (
	"context"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"
)

// Option configures [NewMemory] and [OpenDir]. A nil Option is ignored. An invalid value is an error wrapping
// [ErrInvalidArgument], never a silent default: OpenDir returns it, and a Memory returns it from every method.
type Option func(*config)

type config struct {
	now         func() time.Time
	retention   time.Duration
	logger      *slog.Logger
	journalSync bool
	err         error // an invalid option
}

func newConfig(opts []Option) config {
	c := config{
		now:         time.Now,
		retention:   DefaultRetention,
		logger:      slog.New(slog.DiscardHandler),
		journalSync: true,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// WithClock sets the clock used for Dedup retention and lease expiry (default time.Now). Tests use it to let
// days pass without sleeping. Renewal still ticks in real time; only the expiry decisions read this clock.
// A nil func is invalid (an error wrapping [ErrInvalidArgument]).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.err = fmt.Errorf("%w: WithClock(nil)", ErrInvalidArgument)
			return
		}
		c.now = now
	}
}

// WithRetention sets how long a done msgid is kept (default [DefaultRetention], 96 h). Values of 72 h or less
// risk re-dispatching a message that WeCom still returns (the sync window is 3 days); only tests should use
// them. Marks are timed in milliseconds: d below a millisecond is invalid (an error wrapping
// [ErrInvalidArgument]).
func WithRetention(d time.Duration) Option {
	return func(c *config) {
		if d < time.Millisecond {
			c.err = fmt.Errorf("%w: retention %v is below 1ms", ErrInvalidArgument, d)
			return
		}
		c.retention = d
	}
}

// WithLogger sets the logger for rare events worth an operator's attention: a torn journal tail dropped after a
// crash, a journal compaction, a lease lost. Default: discard. A nil logger is invalid (an error wrapping
// [ErrInvalidArgument]).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.err = fmt.Errorf("%w: WithLogger(nil)", ErrInvalidArgument)
			return
		}
		c.logger = l
	}
}

// WithJournalSync chooses whether Dir's MarkDone (through a lease or not) fsyncs the done-journal before
// returning (default true). With false, a done mark survives a process crash but may be lost on power
// failure: the message may then be dispatched again (WeCom rejects the replayed reply's client msgid as a
// duplicate). PutReply never waits for the disk, whatever this says: a reply record survives a process
// crash, not a power loss, and a rerun that finds no record may answer differently. Cursor and metadata
// saves always fsync. Memory ignores it.
func WithJournalSync(on bool) Option {
	return func(c *config) { c.journalSync = on }
}

func checkKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidArgument, what)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %s is %d bytes, max %d", ErrInvalidArgument, what, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, what)
	}
	return nil
}

func checkCursor(cursor string) error { return checkValue("cursor", cursor) }

// checkValue accepts a cursor or metadata value: at most MaxCursorLen bytes of UTF-8.
func checkValue(what, v string) error {
	if len(v) > MaxCursorLen {
		return fmt.Errorf("%w: %s is %d bytes, max %d", ErrInvalidArgument, what, len(v), MaxCursorLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidArgument, what)
	}
	return nil
}

// checkBatch makes the checks of MarkDone, Done and Lookup: ctx, then the arguments.
func checkBatch(ctx context.Context, openKfID string, msgIDs []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	return checkMsgIDs(msgIDs)
}

func checkMsgIDs(ids []string) error {
	for i, id := range ids {
		switch {
		case id == "":
			return fmt.Errorf("%w: empty msgid at index %d", ErrInvalidArgument, i)
		case len(id) > MaxMsgIDLen:
			return fmt.Errorf("%w: msgid at index %d is %d bytes, max %d", ErrInvalidArgument, i, len(id), MaxMsgIDLen)
		case !utf8.ValidString(id):
			return fmt.Errorf("%w: msgid at index %d is not valid UTF-8", ErrInvalidArgument, i)
		}
	}
	return nil
}

// checkMetaName accepts 1 to MaxMetaNameLen bytes of [a-z0-9_].
func checkMetaName(name string) error {
	if name == "" || len(name) > MaxMetaNameLen {
		return fmt.Errorf("%w: metadata name %q must be 1 to %d bytes", ErrInvalidArgument, name, MaxMetaNameLen)
	}
	if !validMetaName(name) {
		return fmt.Errorf("%w: metadata name %q may only contain a-z, 0-9 and _", ErrInvalidArgument, name)
	}
	return nil
}

func validMetaName(name string) bool {
	if name == "" || len(name) > MaxMetaNameLen {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func checkReply(rec []byte) error {
	if len(rec) == 0 || len(rec) > MaxReplyLen {
		return fmt.Errorf("%w: reply record is %d bytes, want 1 to %d", ErrInvalidArgument, len(rec), MaxReplyLen)
	}
	return nil
}
