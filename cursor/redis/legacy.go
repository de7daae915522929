package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// Keys of earlier versions (see "Keys of earlier versions" in the package documentation): the first read of
// an account by a Store copies them into the current keys in one MULTI on the account's slot, then deletes
// each only if it still holds what was copied, so a crash in between leaves them to be migrated again,
// harmlessly (a cursor is copied only where none is stored, marks are merged with ZADD GT).

// legacyMetaName is the only metadata earlier versions kept, as a cursor key.
const legacyMetaName = "history_before"

func (s *Store) legacyKey(kind, name string) string { return s.prefix + kind + ":" + name }

// delStringIfScript: DEL KEYS[1] if it still holds ARGV[1].
var delStringIfScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// delSetIfScript: DEL the sorted set KEYS[1] if it still has ARGV[1] members and the highest score ARGV[2]
// (a mark made since it was read would have added a member or raised the highest score).
var delSetIfScript = goredis.NewScript(`
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if redis.call('ZCARD', KEYS[1]) == tonumber(ARGV[1]) and top[2] and tonumber(top[2]) == tonumber(ARGV[2]) then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// migrate moves the legacy keys of openKfID into the current layout, once per Store and account.
func (s *Store) migrate(ctx context.Context, openKfID string) error {
	if _, ok := s.migrated.Load(openKfID); ok {
		return nil
	}
	lcur := s.legacyKey("cursor", openKfID)
	lmeta := s.legacyKey("cursor", openKfID+metaInfix+legacyMetaName)
	ldone := s.legacyKey("done", openKfID)
	var cur, meta *goredis.StringCmd
	var marks *goredis.ZSliceCmd
	_, _ = s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cur = p.Get(ctx, lcur)
		meta = p.Get(ctx, lmeta)
		marks = p.ZRangeWithScores(ctx, ldone, 0, -1)
		return nil
	})
	for _, c := range []goredis.Cmder{cur, meta, marks} {
		if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("cursor/redis: read the legacy keys of %q: %w", openKfID, err)
		}
	}
	hasCur, hasMeta, zs := cur.Err() == nil, meta.Err() == nil, marks.Val()
	if !hasCur && !hasMeta && len(zs) == 0 {
		s.migrated.Store(openKfID, struct{}{})
		return nil
	}

	done := s.acct(openKfID, "done")
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if hasCur {
			p.SetNX(ctx, s.acct(openKfID, "cursor"), cur.Val(), 0)
		}
		if hasMeta {
			p.HSetNX(ctx, s.acct(openKfID, "meta"), legacyMetaName, meta.Val())
		}
		for start := 0; start < len(zs); start += doneChunk {
			p.ZAddGT(ctx, done, zs[start:min(start+doneChunk, len(zs))]...)
		}
		if len(zs) > 0 {
			p.PExpire(ctx, done, s.retention)
		}
		return nil
	})
	if err == nil && (hasCur || hasMeta) {
		err = s.c.SAdd(ctx, s.registry(), openKfID).Err()
	}
	if err != nil {
		return fmt.Errorf("cursor/redis: migrate the legacy keys of %q: %w", openKfID, err)
	}

	var errs []error
	if hasCur {
		errs = append(errs, delStringIfScript.Run(ctx, s.c, []string{lcur}, cur.Val()).Err())
	}
	if hasMeta {
		errs = append(errs, delStringIfScript.Run(ctx, s.c, []string{lmeta}, meta.Val()).Err())
	}
	if len(zs) > 0 {
		top := strconv.FormatFloat(zs[len(zs)-1].Score, 'f', -1, 64)
		errs = append(errs, delSetIfScript.Run(ctx, s.c, []string{ldone}, len(zs), top).Err())
	}
	if err := errors.Join(errs...); err != nil {
		// Copied but not deleted: the next Store to read the account migrates them again.
		s.logger.Warn("cursor/redis: could not delete legacy keys after migrating them", "open_kfid", openKfID, "err", err)
	} else {
		s.logger.Info("cursor/redis: migrated legacy keys", "open_kfid", openKfID,
			"cursor", hasCur, "history_before", hasMeta, "done_marks", len(zs))
	}
	s.migrated.Store(openKfID, struct{}{})
	return nil
}

// legacyAccounts returns the names after <prefix>cursor: of the legacy cursor keys, found with SCAN (on every
// master of a Cluster, every shard of a Ring).
func (s *Store) legacyAccounts(ctx context.Context) ([]string, error) {
	pattern := globEscape(s.prefix) + "cursor:*"
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c goredis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			name := strings.TrimPrefix(iter.Val(), s.prefix+"cursor:")
			mu.Lock()
			out = append(out, name)
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := s.c.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error { return scan(ctx, node) })
	case *goredis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, shard *goredis.Client) error { return scan(ctx, shard) })
	default:
		err = scan(ctx, s.c)
	}
	return out, err
}

// globEscape escapes the characters special to Redis's glob-style MATCH patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\*?[]^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
