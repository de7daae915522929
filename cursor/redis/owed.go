package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// The owed marks are one sorted set, <prefix>owed: member the open_kfid, score the mark (the server's
// time in milliseconds when it was made). In a Cluster the set has a slot of its own; each script
// touches only it.

// markOwedScript: KEYS[1] the set; ARGV[1] the open_kfid. Sets the mark to the server's time (ms) and
// returns it. Two marks made in one millisecond are equal, and a clear of either removes both: both
// were made after their callbacks came, so a round that started after either mark covers both.
var markOwedScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
`)

// clearOwedScript: KEYS[1] the set; ARGV[1] the open_kfid, ARGV[2] the mark. Removes the member only if
// its score is still the mark.
var clearOwedScript = goredis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`)

// owedOlderScript: KEYS[1] the set; ARGV[1] the age (ms). Returns member, score, … for the marks made
// more than the age ago by the server's clock, oldest first, at most 1000.
var owedOlderScript = goredis.NewScript(`
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
return redis.call('ZRANGE', KEYS[1], '-inf', '(' .. cutoff, 'BYSCORE', 'LIMIT', 0, 1000, 'WITHSCORES')
`)

func (s *Store) owedKey() string { return s.prefix + "owed" }

// MarkOwed implements cursor.Owed: one script.
func (s *Store) MarkOwed(ctx context.Context, openKfID string) (int64, error) {
	if err := checkAccount("open_kfid", openKfID); err != nil {
		return 0, err
	}
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	mark, err := markOwedScript.Run(ctx, s.c, []string{s.owedKey()}, openKfID).Int64()
	if err != nil {
		return 0, fmt.Errorf("cursor/redis: mark %q owed: %w", openKfID, err)
	}
	return mark, nil
}

// ClearOwed implements cursor.Owed: one script.
func (s *Store) ClearOwed(ctx context.Context, openKfID string, mark int64) error {
	if err := checkAccount("open_kfid", openKfID); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := clearOwedScript.Run(ctx, s.c, []string{s.owedKey()}, openKfID, mark).Err(); err != nil {
		return fmt.Errorf("cursor/redis: clear %q owed: %w", openKfID, err)
	}
	return nil
}

// OwedOlder implements cursor.Owed: one script, timed by the server's clock.
func (s *Store) OwedOlder(ctx context.Context, age time.Duration) ([]cursor.OwedMark, error) {
	if age < 0 {
		return nil, fmt.Errorf("%w: owed age %v is negative", cursor.ErrInvalidArgument, age)
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	vals, err := owedOlderScript.Run(ctx, s.c, []string{s.owedKey()}, age.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("cursor/redis: list owed accounts: %w", err)
	}
	out := make([]cursor.OwedMark, 0, len(vals)/2)
	for i := 0; i+1 < len(vals); i += 2 {
		mark, err := strconv.ParseInt(vals[i+1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cursor/redis: list owed accounts: mark %q of %q: %w", vals[i+1], vals[i], err)
		}
		out = append(out, cursor.OwedMark{OpenKfID: vals[i], Mark: mark})
	}
	return out, nil
}

var _ cursor.Owed = (*Store)(nil)
