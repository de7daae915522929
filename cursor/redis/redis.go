package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// DefaultPrefix is the prefix of every key the Store writes unless [WithPrefix] says otherwise.
const DefaultPrefix = "wxkf:"

// Store implements cursor.State on Redis (a single node, a failover group or a Redis Cluster), plus a token
// store for kf (Get and Set with a TTL), so that several replicas of a bot share their sync state. The keys,
// the fencing of writes and the migration of the keys of earlier versions are described in the package
// documentation.
//
// Safe for concurrent use. It owns no connection: closing the client is the caller's business.
type Store struct {
	c         goredis.UniversalClient
	prefix    string
	retention time.Duration
	logger    *slog.Logger
	err       error // an invalid option: every method returns it

	migrated   sync.Map // open_kfid → struct{}: no legacy keys left to migrate (checked by this Store)
	maintained sync.Map // open_kfid → time.Time: when this Store's marks last maintained the account's keys
	registered sync.Map // open_kfid → time.Time: when this Store last added the account to <prefix>accounts
}

var _ cursor.State = (*Store)(nil)

// Option configures [New].
type Option func(*Store)

// WithPrefix sets the prefix of every key (default [DefaultPrefix], "wxkf:"): give each bot, environment or
// test its own. An empty prefix is allowed. A prefix holding '{' or '}' would change the Cluster hash slot of
// the keys: every method then returns an error wrapping cursor.ErrInvalidArgument.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		s.prefix = prefix
		if strings.ContainsAny(prefix, "{}") {
			s.err = fmt.Errorf("%w: key prefix %q contains '{' or '}'", cursor.ErrInvalidArgument, prefix)
		}
	}
}

// WithRetention sets how long a done msgid and a reply record are kept (default cursor.DefaultRetention,
// 96 h: the 72 h sync window of sync_msg, doc 94670, plus a day of margin for clock differences and late
// handlers). Only tests should go below 72 h. d below a millisecond is invalid: every method then returns an
// error wrapping cursor.ErrInvalidArgument.
func WithRetention(d time.Duration) Option {
	return func(s *Store) {
		if d < time.Millisecond {
			s.err = fmt.Errorf("%w: retention %v is below 1ms", cursor.ErrInvalidArgument, d)
			return
		}
		s.retention = d
	}
}

// WithLogger sets the logger for lease renewal failures and losses and for the migration of keys written by
// earlier versions (default: discard). A nil logger is invalid: every method then returns an error wrapping
// cursor.ErrInvalidArgument.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l == nil {
			s.err = fmt.Errorf("%w: WithLogger(nil)", cursor.ErrInvalidArgument)
			return
		}
		s.logger = l
	}
}

// New returns a Store that keeps its state in Redis through client (a *goredis.Client, a failover client or a
// *goredis.ClusterClient). It does no I/O. A nil client or an invalid option is reported, wrapping
// cursor.ErrInvalidArgument, by every method. The server must be Redis 6.2 or newer (ZMSCORE, ZADD GT).
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
	if client == nil {
		s.err = fmt.Errorf("%w: nil Redis client", cursor.ErrInvalidArgument)
	}
	if s.err != nil {
		s.err = fmt.Errorf("cursor/redis: %w", s.err)
	}
	return s
}

func (s *Store) ready(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	return ctx.Err()
}

// acct returns the key of kind for the account (or lease key) id: <prefix>{<id>}:<kind>.
func (s *Store) acct(id, kind string) string { return s.prefix + "{" + id + "}:" + kind }

// registry is the set of every account a lease wrote for.
func (s *Store) registry() string { return s.prefix + "accounts" }

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

// checkAccount checks an open_kfid or lease key: a key, and no '{' or '}' (they would break the hash tag).
func checkAccount(what, key string) error {
	if err := checkKey(what, key); err != nil {
		return err
	}
	if strings.ContainsAny(key, "{}") {
		return fmt.Errorf("%w: %s %q contains '{' or '}'", cursor.ErrInvalidArgument, what, key)
	}
	return nil
}

// checkValue accepts a cursor or metadata value: at most cursor.MaxCursorLen bytes of UTF-8.
func checkValue(what, v string) error {
	if len(v) > cursor.MaxCursorLen {
		return fmt.Errorf("%w: %s is %d bytes, max %d", cursor.ErrInvalidArgument, what, len(v), cursor.MaxCursorLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", cursor.ErrInvalidArgument, what)
	}
	return nil
}

// checkMetaName accepts 1 to cursor.MaxMetaNameLen bytes of [a-z0-9_].
func checkMetaName(name string) error {
	if !validMetaName(name) {
		return fmt.Errorf("%w: metadata name %q must be 1 to %d bytes of a-z, 0-9 and _", cursor.ErrInvalidArgument, name, cursor.MaxMetaNameLen)
	}
	return nil
}

func validMetaName(name string) bool {
	if name == "" || len(name) > cursor.MaxMetaNameLen {
		return false
	}
	for i := range len(name) {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Load implements cursor.Store: GET <prefix>{<open_kfid>}:cursor. A missing key is ("", nil); every other
// failure is an error.
func (s *Store) Load(ctx context.Context, openKfID string) (string, error) {
	return s.get(ctx, "load cursor", openKfID, func() *goredis.StringCmd {
		return s.c.Get(ctx, s.acct(openKfID, "cursor"))
	})
}

// LoadMeta implements cursor.State: HGET <prefix>{<open_kfid>}:meta <name>.
func (s *Store) LoadMeta(ctx context.Context, openKfID, name string) (string, error) {
	if err := checkMetaName(name); err != nil {
		return "", err
	}
	return s.get(ctx, "load "+name, openKfID, func() *goredis.StringCmd {
		return s.c.HGet(ctx, s.acct(openKfID, "meta"), name)
	})
}

// get is Load or LoadMeta: it checks openKfID, migrates the account's legacy keys if this Store has not
// yet, and runs cmd. A missing value is "".
func (s *Store) get(ctx context.Context, op, openKfID string, cmd func() *goredis.StringCmd) (string, error) {
	if err := checkAccount("open_kfid", openKfID); err != nil {
		return "", err
	}
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	if err := s.migrate(ctx, openKfID); err != nil {
		return "", err
	}
	v, err := cmd().Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("cursor/redis: %s of %q: %w", op, openKfID, err)
	}
	return v, nil
}

// Save implements cursor.Store: SET <prefix>{<open_kfid>}:cursor without expiry, and SADD to
// <prefix>accounts, in one pipeline. It is not fenced: the sync engine saves through its lease. Durability is
// the server's (configure AOF with appendfsync everysec or always if a Redis restart must not lose the last
// cursors).
func (s *Store) Save(ctx context.Context, openKfID, cur string) error {
	if err := checkAccount("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkValue("cursor", cur); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, s.acct(openKfID, "cursor"), cur, 0)
		p.SAdd(ctx, s.registry(), openKfID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cursor/redis: save cursor of %q: %w", openKfID, err)
	}
	return nil
}

// Accounts implements cursor.State: the members of <prefix>accounts, plus the accounts that still have a
// cursor only under the key of earlier versions (<prefix>cursor:<open_kfid>, found with SCAN on every master
// of a Cluster), each once. A metadata suffix ("#wxkf_<name>", how kf kept metadata in a cursor key) is cut
// off.
func (s *Store) Accounts(ctx context.Context) ([]string, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	members, err := s.c.SMembers(ctx, s.registry()).Result()
	if err != nil {
		return nil, fmt.Errorf("cursor/redis: list accounts: %w", err)
	}
	legacy, err := s.legacyAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("cursor/redis: list accounts with legacy keys: %w", err)
	}
	seen := make(map[string]bool)
	out := []string{}
	for _, k := range append(members, legacy...) {
		if a := accountOf(k); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out, nil
}

// metaInfix is how kf kept metadata before it had methods of its own: as the cursor of
// "<open_kfid>#wxkf_<name>".
const metaInfix = "#wxkf_"

// accountOf returns the open_kfid of a registry member or legacy cursor key name: the name itself, or the part
// before a metadata suffix.
func accountOf(name string) string {
	if i := strings.LastIndex(name, metaInfix); i > 0 && validMetaName(name[i+len(metaInfix):]) {
		return name[:i]
	}
	return name
}
