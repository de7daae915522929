package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// DefaultPrefix is the prefix of every key the Store writes unless [WithPrefix] says otherwise.
const DefaultPrefix = "wxkf:"

// Store implements cursor.Store, cursor.Locker and cursor.Dedup on Redis, plus a token store for kf (Get and
// Set with a TTL), so that several replicas of a bot share their sync state. Keys (all under the prefix):
//
//	<prefix>cursor:<open_kfid>   string: the sync_msg cursor (no expiry)
//	<prefix>lease:<key>          string: the lease holder's random token, with the lease ttl
//	<prefix>done:<open_kfid>     sorted set: msgid scored by the Redis server time (ms) it was marked done
//	<prefix>token:<key>          string: a cached value (access_token) with its TTL
//
// Safe for concurrent use. It owns no connection: closing the client is the caller's business.
type Store struct {
	c         goredis.UniversalClient
	prefix    string
	retention time.Duration
	logger    *slog.Logger
}

var (
	_ cursor.Store  = (*Store)(nil)
	_ cursor.Locker = (*Store)(nil)
	_ cursor.Dedup  = (*Store)(nil)
)

// Option configures [New].
type Option func(*Store)

// WithPrefix sets the prefix of every key (default [DefaultPrefix], "wxkf:"): give each bot, environment or
// test its own. An empty prefix is allowed.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// WithRetention sets how long a done msgid is kept (default cursor.DefaultRetention, 96 h: the 72 h sync
// window of sync_msg, wecom-kf-api §4, plus a day of margin for clock differences and late handlers). Only
// tests should go below 72 h. d below a millisecond keeps the default.
func WithRetention(d time.Duration) Option {
	return func(s *Store) {
		if d >= time.Millisecond {
			s.retention = d
		}
	}
}

// WithLogger sets the logger for lease renewal failures and losses (default: discard). nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.logger = l
		}
	}
}

// New returns a Store that keeps its state in Redis through client (a *goredis.Client, a failover client or a
// *goredis.ClusterClient: every script and pipeline touches one key). It does no I/O. Dedup uses ZMSCORE,
// so the server must be Redis 6.2 or newer.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		c:         client,
		prefix:    DefaultPrefix,
		retention: cursor.DefaultRetention,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

var errNilClient = errors.New("cursor/redis: nil client")

func (s *Store) ready(ctx context.Context) error {
	if s.c == nil {
		return errNilClient
	}
	return ctx.Err()
}

func (s *Store) key(kind, name string) string { return s.prefix + kind + ":" + name }

func checkKey(what, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty %s", cursor.ErrInvalidArgument, what)
	case len(key) > cursor.MaxKeyLen:
		return fmt.Errorf("%w: %s is %d bytes, max %d", cursor.ErrInvalidArgument, what, len(key), cursor.MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %s is not valid UTF-8", cursor.ErrInvalidArgument, what)
	}
	return nil
}

// Load implements cursor.Store: GET <prefix>cursor:<open_kfid>. A missing key is ("", nil); every other
// failure is an error.
func (s *Store) Load(ctx context.Context, openKfID string) (string, error) {
	if err := checkKey("open_kfid", openKfID); err != nil {
		return "", err
	}
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	v, err := s.c.Get(ctx, s.key("cursor", openKfID)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cursor/redis: load cursor of %q: %w", openKfID, err)
	}
	return v, nil
}

// Save implements cursor.Store: SET <prefix>cursor:<open_kfid> without expiry. Durability is the server's
// (configure AOF with appendfsync everysec or always if a Redis restart must not lose the last cursors).
func (s *Store) Save(ctx context.Context, openKfID, cur string) error {
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if len(cur) > cursor.MaxCursorLen {
		return fmt.Errorf("%w: cursor is %d bytes, max %d", cursor.ErrInvalidArgument, len(cur), cursor.MaxCursorLen)
	}
	if !utf8.ValidString(cur) {
		return fmt.Errorf("%w: cursor is not valid UTF-8", cursor.ErrInvalidArgument)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.key("cursor", openKfID), cur, 0).Err(); err != nil {
		return fmt.Errorf("cursor/redis: save cursor of %q: %w", openKfID, err)
	}
	return nil
}
