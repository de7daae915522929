// Package redis implements cursor.Store, cursor.Locker and cursor.Dedup on Redis (go-redis v9), plus a token
// store matching kf.TokenStore, so that several replicas of a bot share cursors, per-account leases, the
// done-msgid set and the access_token. All keys live under a configurable prefix.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	store := redis.New(client, redis.WithPrefix("mybot:"))
//	cur, err := store.Load(ctx, openKfID) // ("", nil): none yet; a Redis error is an error, never "none"
package redis
