package redis

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// The state of kf's rate limiter for one corp and API path is one hash, <prefix>{<corpid>}:rate:<path>:
// t1..tn the theoretical arrival times of the GCRA rules, p the end of the last pause (0 once the probe
// went after it), q how long the calls after the probe wait and h until when they do, s the pauses
// in a row, e until when a new pause counts as one more in the row; times are microseconds of the Redis server's clock (TIME), so the replicas' clocks play no part. Each method
// is one script on that one key, so it is atomic and touches one Cluster slot; the hash tag puts all the
// keys of a corp in one slot, and the corp id in the key keeps corps apart on one Redis.

// admitScript: KEYS[1] the hash; ARGV[1] the calls asked for, then (interval, tolerance) pairs in µs.
// Returns {admitted, wait µs, paused 0/1}. Mirrors kf's in-process store. An admission runs TIME, HMGET,
// HSET and PEXPIRE (a refusal the first two): Redis counts five commands with the EVALSHA.
var admitScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local k = (#ARGV - 1) / 2
local fields = {'p', 'h', 'q', 'e'}
for i = 1, k do fields[i + 4] = 't' .. i end
local v = redis.call('HMGET', KEYS[1], unpack(fields))
local p, h, q, e = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
if p > now then
  return {0, math.ceil(p - now), 1}
end
if h > now then
  return {0, math.ceil(h - now), 1}
end
local grant = n
if p > 0 then grant = 1 end
local tats = {}
for i = 1, k do
  local iv, tol = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = tonumber(v[i + 4]) or 0
  if tat < now then tat = now end
  tats[i] = tat
  local fit = math.floor((now + tol - tat) / iv)
  if fit < grant then grant = fit end
end
if grant < 0 then grant = 0 end
local wait = 0
if grant < n then
  for i = 1, k do
    local iv, tol = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local w = tats[i] + (grant + 1) * iv - tol - now
    if w > wait then wait = w end
  end
end
if grant > 0 then
  -- One HSET and one PEXPIRE: the key lives as long as its latest time (a TAT, the row's end e, the
  -- probe's hold h), after which it holds nothing the next call needs.
  local set = {}
  local last = e
  for i = 1, k do
    local tat = tats[i] + grant * tonumber(ARGV[2 * i])
    set[#set + 1] = 't' .. i
    set[#set + 1] = string.format('%.0f', tat)
    if tat > last then last = tat end
  end
  if p > 0 then
    h = now + q
    set[#set + 1] = 'p'
    set[#set + 1] = '0'
    set[#set + 1] = 'h'
    set[#set + 1] = string.format('%.0f', h)
    if grant < n and q > wait then wait = q end
  end
  if h > last then last = h end
  if #set > 0 then
    redis.call('HSET', KEYS[1], unpack(set))
    redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) / 1000) + 1000)
  end
end
return {grant, math.ceil(wait), 0}
`)

// pauseScript: KEYS[1] the hash; ARGV: the first pause, the longest, and the reset, in µs. Returns {pause µs,
// strike}; strike 0 when a pause was running already (the time left).
var pauseScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = redis.call('HMGET', KEYS[1], 'p', 's', 'e')
local p, s, e = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
if p > now then
  return {math.ceil(p - now), 0}
end
if now > e then s = 0 end
s = s + 1
local d, mx = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 2, s do
  if d >= mx then break end
  d = d * 2
end
if d > mx then d = mx end
p = now + d
e = p + tonumber(ARGV[3])
local q = math.floor(tonumber(ARGV[1]) / 4)
if q > 1000000 then q = 1000000 end
redis.call('HSET', KEYS[1], 'p', string.format('%.0f', p), 's', s, 'e', string.format('%.0f', e), 'q', q)
local left = redis.call('PTTL', KEYS[1])
local ms = math.ceil((e - now) / 1000) + 1000
if left < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return {math.ceil(d), s}
`)

// rateKey is <prefix>{<corpid>}:rate:<path>.
func (s *Store) rateKey(corpID, path string) (string, error) {
	if err := checkAccount("corp id", corpID); err != nil {
		return "", err
	}
	if err := checkKey("API path", path); err != nil {
		return "", err
	}
	if strings.ContainsAny(path, "{}") {
		return "", fmt.Errorf("%w: API path %q contains '{' or '}'", cursor.ErrInvalidArgument, path)
	}
	return s.prefix + "{" + corpID + "}:rate:" + path, nil
}

// AdmitCalls lets up to n calls to path for corpID go now under rules, generic cell rate algorithm (GCRA)
// rules of (emission interval, tolerance), and returns how many it admitted; when fewer than n, how long
// until one more fits; while the path is paused, none and the time left (paused true). It implements
// kf.RateStore, so that replicas share one rate limiter per corp (kf.NewRateLimiter with
// kf.WithRateStore; a kf.Channel on this Store does it by itself). One script on one key; the clock is the
// Redis server's. Intervals are rounded up and tolerances down to microseconds.
func (s *Store) AdmitCalls(ctx context.Context, corpID, path string, n int, rules []struct{ Interval, Tolerance time.Duration }) (admitted int, wait time.Duration, paused bool, err error) {
	key, err := s.rateKey(corpID, path)
	if err != nil {
		return 0, 0, false, err
	}
	if n < 1 {
		return 0, 0, false, fmt.Errorf("%w: admit %d calls", cursor.ErrInvalidArgument, n)
	}
	if err := s.ready(ctx); err != nil {
		return 0, 0, false, err
	}
	args := make([]any, 1, 1+2*len(rules))
	args[0] = n
	for _, r := range rules {
		iv := (r.Interval + time.Microsecond - 1) / time.Microsecond
		tol := r.Tolerance / time.Microsecond
		if iv < 1 || tol < iv {
			return 0, 0, false, fmt.Errorf("%w: rate rule %v/%v: want 1µs ≤ interval ≤ tolerance", cursor.ErrInvalidArgument, r.Interval, r.Tolerance)
		}
		args = append(args, int64(iv), int64(tol))
	}
	res, err := admitScript.Run(ctx, s.c, []string{key}, args...).Int64Slice()
	if err != nil {
		return 0, 0, false, fmt.Errorf("cursor/redis: admit calls: %w", err)
	}
	if len(res) != 3 {
		return 0, 0, false, fmt.Errorf("cursor/redis: admit calls: unexpected reply %v", res)
	}
	return int(res[0]), time.Duration(res[1]) * time.Microsecond, res[2] == 1, nil
}

// PauseCalls pauses the calls to path for corpID on every replica: for min, doubled for each pause that
// starts within reset after the previous one ended, up to max. It returns the pause and its number in the
// row; while a pause runs it changes nothing and returns the time left with strike 0. It implements
// kf.RateStore (a 45009 answer, doc 90454). One script on one key.
func (s *Store) PauseCalls(ctx context.Context, corpID, path string, min, max, reset time.Duration) (wait time.Duration, strike int, err error) {
	key, err := s.rateKey(corpID, path)
	if err != nil {
		return 0, 0, err
	}
	if min < time.Microsecond || max < min || reset < 0 {
		return 0, 0, fmt.Errorf("%w: pause %v..%v, reset %v", cursor.ErrInvalidArgument, min, max, reset)
	}
	if err := s.ready(ctx); err != nil {
		return 0, 0, err
	}
	us := func(d time.Duration) int64 { return int64(d / time.Microsecond) }
	res, err := pauseScript.Run(ctx, s.c, []string{key}, us(min), us(max), us(reset)).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("cursor/redis: pause calls: %w", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("cursor/redis: pause calls: unexpected reply %v", res)
	}
	return time.Duration(res[0]) * time.Microsecond, int(res[1]), nil
}
