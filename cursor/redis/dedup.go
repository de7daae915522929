package redis

import (
	"context"
	"fmt"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// Dedup design: one sorted set per account, <prefix>done:<open_kfid>, member = msgid, score = the Redis
// server's time in ms when it was marked. Compared with one key per msgid:
//   - a batch check is a single command (ZMSCORE) on a single key, so 1000 msgids cost one round trip and
//     work unchanged on Redis Cluster (one slot per account);
//   - expiry is exact without a key per msgid: Done counts a member only if its score is within the
//     retention, by the server clock, so replicas with skewed clocks agree;
//   - it stays bounded: every MarkDone trims members older than the retention (ZREMRANGEBYSCORE) and sets
//     the whole set to expire a retention after the last mark, so an idle account leaves nothing behind.
// Both operations are Lua scripts so that reading TIME and acting on it is atomic.

// markScript: KEYS[1] the account's set; ARGV[1] retention (ms); ARGV[2..] msgids.
var markScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ret = tonumber(ARGV[1])
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = now
  args[#args + 1] = ARGV[i]
  if #args >= 1000 then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ret)
redis.call('PEXPIRE', KEYS[1], ret)
return #ARGV - 1
`)

// doneScript: KEYS[1] the account's set; ARGV[1] retention (ms); ARGV[2..] msgids (at most doneChunk).
// Returns 1 for a msgid marked less than the retention ago, else 0, in order.
var doneScript = goredis.NewScript(`
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 2))
local out = {}
for i = 1, #ARGV - 1 do
  local s = scores[i]
  if s and tonumber(s) > cutoff then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`)

// doneChunk bounds the msgids per script call (Lua's unpack has a stack limit of a few thousand values).
// Larger batches are split and sent as one pipeline: still one round trip.
const doneChunk = 1000

func checkMsgIDs(ids []string) error {
	for i, id := range ids {
		switch {
		case id == "":
			return fmt.Errorf("%w: empty msgid at index %d", cursor.ErrInvalidArgument, i)
		case len(id) > cursor.MaxMsgIDLen:
			return fmt.Errorf("%w: msgid at index %d is %d bytes, max %d", cursor.ErrInvalidArgument, i, len(id), cursor.MaxMsgIDLen)
		case !utf8.ValidString(id):
			return fmt.Errorf("%w: msgid at index %d is not valid UTF-8", cursor.ErrInvalidArgument, i)
		}
	}
	return nil
}

// MarkDone implements cursor.Dedup: ZADD with the server time, trim what is older than the retention, and
// PEXPIRE the set by the retention, atomically (one Lua script per 1000 msgids, pipelined).
func (s *Store) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := checkKey("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	if len(msgIDs) == 0 {
		return nil
	}
	if _, err := s.runChunked(ctx, markScript, s.key("done", openKfID), msgIDs); err != nil {
		return fmt.Errorf("cursor/redis: mark %d msgids done for %q: %w", len(msgIDs), openKfID, err)
	}
	return nil
}

// Done implements cursor.Dedup: ZMSCORE of the msgids against the server time, in one round trip.
func (s *Store) Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error) {
	if err := checkKey("open_kfid", openKfID); err != nil {
		return nil, err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	if len(msgIDs) == 0 {
		return []bool{}, nil
	}
	cmds, err := s.runChunked(ctx, doneScript, s.key("done", openKfID), msgIDs)
	if err != nil {
		return nil, fmt.Errorf("cursor/redis: check %d msgids for %q: %w", len(msgIDs), openKfID, err)
	}
	out := make([]bool, 0, len(msgIDs))
	for _, cmd := range cmds {
		vals, err := cmd.Int64Slice()
		if err != nil {
			return nil, fmt.Errorf("cursor/redis: check msgids for %q: %w", openKfID, err)
		}
		for _, v := range vals {
			out = append(out, v == 1)
		}
	}
	if len(out) != len(msgIDs) {
		return nil, fmt.Errorf("cursor/redis: check msgids for %q: got %d answers for %d msgids", openKfID, len(out), len(msgIDs))
	}
	return out, nil
}

// runChunked runs script on key with ARGV = retention, ids…, doneChunk ids per call. A single chunk is one
// EVALSHA (falling back to EVAL); several are one pipeline of EVALSHA, reloading the script and resending
// once if the server does not know it (after a restart or SCRIPT FLUSH). Both scripts are idempotent.
func (s *Store) runChunked(ctx context.Context, script *goredis.Script, key string, ids []string) ([]*goredis.Cmd, error) {
	keys := []string{key}
	argv := func(chunk []string) []any {
		a := make([]any, 0, len(chunk)+1)
		a = append(a, s.retention.Milliseconds())
		for _, id := range chunk {
			a = append(a, id)
		}
		return a
	}
	if len(ids) <= doneChunk {
		cmd := script.Run(ctx, s.c, keys, argv(ids)...)
		return []*goredis.Cmd{cmd}, cmd.Err()
	}
	send := func() ([]*goredis.Cmd, error) {
		pipe := s.c.Pipeline()
		var cmds []*goredis.Cmd
		for start := 0; start < len(ids); start += doneChunk {
			cmds = append(cmds, script.EvalSha(ctx, pipe, keys, argv(ids[start:min(start+doneChunk, len(ids))])...))
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := send()
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if lerr := script.Load(ctx, s.c).Err(); lerr != nil {
			return nil, lerr
		}
		cmds, err = send()
	}
	return cmds, err
}
