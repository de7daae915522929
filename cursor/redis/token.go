package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
)

// Get returns the value cached under <prefix>token:<key> and its remaining TTL, or ("", 0, nil) when there is
// none: it implements kf.TokenStore so that replicas share one access_token (doc 91039:
// gettoken is rate-limited and must not be called often). GET and PTTL run in one MULTI/EXEC, so
// the TTL belongs to the value returned. A value stored without expiry reports a TTL of 0. Errors never
// include the value.
func (s *Store) Get(ctx context.Context, key string) (value string, ttl time.Duration, err error) {
	if err := checkKey("token key", key); err != nil {
		return "", 0, err
	}
	if err := s.ready(ctx); err != nil {
		return "", 0, err
	}
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	rkey := s.prefix + "token:" + key
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, rkey)
		pttl = p.PTTL(ctx, rkey)
		return nil
	})
	if get != nil && errors.Is(get.Err(), goredis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("cursor/redis: get token: %w", err)
	}
	ttl = pttl.Val()
	if ttl < 0 {
		ttl = 0
	}
	return get.Val(), ttl, nil
}

// Set caches value under <prefix>token:<key> for ttl (SET … PX), replacing any previous value; it implements
// kf.TokenStore. ttl must be at least a millisecond. Errors never include the value.
func (s *Store) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	if err := checkKey("token key", key); err != nil {
		return err
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("%w: token ttl %v is below 1ms", cursor.ErrInvalidArgument, ttl)
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.prefix+"token:"+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("cursor/redis: set token: %w", err)
	}
	return nil
}
