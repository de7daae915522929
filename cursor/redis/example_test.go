package redis_test

import (
	"context"
	"errors"
	"log"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wxkf/wxkf/cursor"
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
	_ = cur // ... sync_msg from cur; mark handled msgids with lease.MarkDone ...
	// Writes go through the lease: once another replica has the account, they are refused.
	if err := lease.Save(ctx, "next-cursor"); errors.Is(err, cursor.ErrLeaseLost) {
		return // stop: another replica pulls this account now
	}
}

// On Redis Cluster, every key of an account has the account as its hash tag, so each script touches one slot.
func ExampleNew_cluster() {
	client := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{"redis-0:6379", "redis-1:6379", "redis-2:6379"},
	})
	defer client.Close()
	_ = redis.New(client, redis.WithPrefix("mybot:"))
}
