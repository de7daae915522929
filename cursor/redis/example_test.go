package redis_test

import (
	"context"
	"log"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor/redis"
)

// Several replicas share one Redis: each pulls an account only while it holds that account's lease.
func ExampleNew() {
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()
	store := redis.New(client, redis.WithPrefix("mybot:"))

	lease, err := store.Lock(ctx, "wkAbC", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(ctx)
	cur, err := store.Load(ctx, "wkAbC")
	if err != nil {
		log.Fatal(err) // Redis unreachable: retry later, never pull from scratch
	}
	_ = cur // ... sync_msg from cur; mark handled msgids with store.MarkDone ...
	if lease.Err() == nil {
		_ = store.Save(ctx, "wkAbC", "next-cursor")
	}
}
