package redis

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// Dedup design: one sorted set per account, <prefix>{<open_kfid>}:done, member = msgid, score = the Redis
// server's time in ms when it was marked. Compared with one key per msgid:
//   - a batch check is a single script call on one slot (ZMSCORE), so 1000 msgids cost one round trip and
//     work unchanged on Redis Cluster;
//   - expiry is exact without a key per msgid: a member counts only if its score is within the retention,
//     by the server clock, so replicas with skewed clocks agree;
//   - it stays bounded: a MarkDone trims members older than the retention (ZREMRANGEBYSCORE) and sets the
//     whole set to expire a little over a retention after the last mark, so an idle account leaves nothing
//     behind. That maintenance runs with at most one mark per account every 10 s (Store.maintainEvery), so a
//     plain mark costs three commands (TIME, ZADD, HDEL) besides the lease check.
// Reply records are a hash msgid → "<unix ms put>:<record>": PutReply is one HSET (it runs on the way to
// every reply, so it is kept to the lease check and that), Lookup skips records older than the retention by
// their stamp, and MarkDone deletes the records of the msgids it marks, sweeps expired ones when the hash has
// grown, and keeps the hash expiring a little over a retention after the last mark. All of it is Lua, so that reading TIME
// and acting on it (and checking the lease, for a fenced write) is atomic.

// markScript marks msgids done and deletes their reply records. KEYS: lease, done, reply; ARGV[1] the lease
// value ("" for the unfenced Dedup.MarkDone), ARGV[2] the time-to-live to set (ms), ARGV[3] the retention
// (ms) if this call also maintains the keys, else "0", ARGV[4..] msgids. Returns 0 (and writes nothing) if
// the lease does not hold that value, else 1. A plain mark is TIME, ZADD and HDEL (and the lease's GET).
// Maintenance, which the caller asks for at most once per maintainEvery per account, trims marks older than
// the retention, sets both keys' time-to-live, and, when the reply hash holds more than 4096 records
// (records of messages never marked done: rare), sweeps the expired ones.
var markScript = goredis.NewScript(`
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ret = tonumber(ARGV[3])
local scored, ids = {}, {}
local function flush()
  redis.call('ZADD', KEYS[2], unpack(scored))
  redis.call('HDEL', KEYS[3], unpack(ids))
  scored, ids = {}, {}
end
for i = 4, #ARGV do
  scored[#scored + 1] = now
  scored[#scored + 1] = ARGV[i]
  ids[#ids + 1] = ARGV[i]
  if #ids >= 500 then
    flush()
  end
end
if #ids > 0 then
  flush()
end
if ret == 0 then
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ret)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if redis.call('PEXPIRE', KEYS[3], ARGV[2]) == 1 and redis.call('HLEN', KEYS[3]) > 4096 then
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local at = tonumber(string.match(all[i + 1], '^(%d+):'))
    if at == nil or at <= now - ret then
      redis.call('HDEL', KEYS[3], all[i])
    end
  end
end
return 1
`)

// maintainEvery is how often, at most, a Store's marks for one account trim the done set and renew the keys'
// time-to-live: every 10 s, or an eighth of a shorter retention. The time-to-live they set is the retention
// plus twice that, so the marks made between two maintenances still last a full retention.
func (s *Store) maintainEvery() time.Duration { return min(10*time.Second, s.retention/8) }

// doneLately reports whether m (key → time.Time) says this Store did something for key less than
// maintainEvery ago: the per-account work it does only now and then (maintenance, registration).
func (s *Store) doneLately(m *sync.Map, key string) bool {
	at, ok := m.Load(key)
	return ok && time.Since(at.(time.Time)) < s.maintainEvery()
}

// markHead is the ARGV head of markScript for a mark through value ("" unfenced) on openKfID: it asks for
// maintenance when this Store has not maintained the account's keys for maintainEvery.
func (s *Store) markHead(value, openKfID string) []any {
	ttl := (s.retention + 2*s.maintainEvery()).Milliseconds()
	if s.doneLately(&s.maintained, openKfID) {
		return []any{value, ttl, 0}
	}
	s.maintained.Store(openKfID, time.Now())
	return []any{value, ttl, s.retention.Milliseconds()}
}

// lookupScript: KEYS: done, reply; ARGV[1] retention (ms), ARGV[2..] msgids (at most doneChunk). Returns, in
// order, 1 for a msgid marked less than the retention ago, else its reply record (stamp removed) if one was
// put less than the retention ago, else 0.
var lookupScript = goredis.NewScript(`
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local n = #ARGV - 1
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 2))
local recs = redis.call('HMGET', KEYS[2], unpack(ARGV, 2))
local out = {}
for i = 1, n do
  local s = scores[i]
  out[i] = 0
  if s and tonumber(s) > cutoff then
    out[i] = 1
  elseif recs[i] then
    local at, rec = string.match(recs[i], '^(%d+):(.*)$')
    if at and tonumber(at) > cutoff then
      out[i] = rec
    end
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

// checkBatch checks the arguments of MarkDone, Done and Lookup, then the Store and ctx.
func (s *Store) checkBatch(ctx context.Context, openKfID string, msgIDs []string) error {
	if err := checkAccount("open_kfid", openKfID); err != nil {
		return err
	}
	if err := checkMsgIDs(msgIDs); err != nil {
		return err
	}
	return s.ready(ctx)
}

// markKeys are the KEYS of markScript for openKfID.
func (s *Store) markKeys(openKfID string) []string {
	return []string{s.acct(openKfID, "lease"), s.acct(openKfID, "done"), s.acct(openKfID, "reply")}
}

// MarkDone implements cursor.Dedup: ZADD with the server time, trim what is older than the retention, PEXPIRE
// the set by the retention, and delete the msgids' reply records, atomically (one Lua script per 1000 msgids,
// pipelined). It is not fenced: the sync engine marks through its lease.
func (s *Store) MarkDone(ctx context.Context, openKfID string, msgIDs ...string) error {
	if err := s.checkBatch(ctx, openKfID, msgIDs); err != nil {
		return err
	}
	if len(msgIDs) == 0 {
		return nil
	}
	if _, err := s.runChunked(ctx, markScript, s.markKeys(openKfID), s.markHead("", openKfID), msgIDs); err != nil {
		return fmt.Errorf("cursor/redis: mark %d msgids done for %q: %w", len(msgIDs), openKfID, err)
	}
	return nil
}

// Done implements cursor.Dedup: Lookup's answer without the reply records.
func (s *Store) Done(ctx context.Context, openKfID string, msgIDs ...string) ([]bool, error) {
	st, err := s.Lookup(ctx, openKfID, msgIDs...)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(st))
	for i, x := range st {
		out[i] = x.Done
	}
	return out, nil
}

// Lookup implements cursor.State: one script per 1000 msgids (ZMSCORE of the done set and HMGET of the reply
// records, each record's age read from its stamp), against the server time, in one round trip.
func (s *Store) Lookup(ctx context.Context, openKfID string, msgIDs ...string) ([]cursor.Status, error) {
	if err := s.checkBatch(ctx, openKfID, msgIDs); err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, openKfID); err != nil {
		return nil, err
	}
	if len(msgIDs) == 0 {
		return []cursor.Status{}, nil
	}
	keys := []string{s.acct(openKfID, "done"), s.acct(openKfID, "reply")}
	cmds, err := s.runChunked(ctx, lookupScript, keys, []any{s.retention.Milliseconds()}, msgIDs)
	if err != nil {
		return nil, fmt.Errorf("cursor/redis: look up %d msgids of %q: %w", len(msgIDs), openKfID, err)
	}
	out := make([]cursor.Status, 0, len(msgIDs))
	for _, cmd := range cmds {
		vals, err := cmd.Slice()
		if err != nil {
			return nil, fmt.Errorf("cursor/redis: look up msgids of %q: %w", openKfID, err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case int64:
				out = append(out, cursor.Status{Done: v == 1})
			case string:
				out = append(out, cursor.Status{Reply: []byte(v)})
			default:
				return nil, fmt.Errorf("cursor/redis: look up msgids of %q: unexpected %T in the answer", openKfID, v)
			}
		}
	}
	if len(out) != len(msgIDs) {
		return nil, fmt.Errorf("cursor/redis: look up msgids of %q: got %d answers for %d msgids", openKfID, len(out), len(msgIDs))
	}
	return out, nil
}

// runChunked runs script on keys with ARGV = head…, ids…, doneChunk ids per call. A single chunk is one
// EVALSHA (falling back to EVAL); several are one pipeline of EVALSHA, reloading the script and resending
// once if the server does not know it (after a restart or SCRIPT FLUSH). The scripts are idempotent.
func (s *Store) runChunked(ctx context.Context, script *goredis.Script, keys []string, head []any, ids []string) ([]*goredis.Cmd, error) {
	argv := func(chunk []string) []any {
		a := make([]any, 0, len(head)+len(chunk))
		a = append(a, head...)
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
		// On a ClusterClient, SCRIPT LOAD reaches every master.
		if lerr := script.Load(ctx, s.c).Err(); lerr != nil {
			return nil, lerr
		}
		cmds, err = send()
	}
	return cmds, err
}
