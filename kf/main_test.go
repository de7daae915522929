package kf

import (
	"fmt"
	"os"
	"testing"

	"github.com/wxkf/wxkf/cursor/redis/redistest"
)

// exampleRedisEnv is the address of the Redis ExampleWithStores uses. TestMain starts a redis-server for it
// unless it is set.
const exampleRedisEnv = "WXKF_EXAMPLE_REDIS_ADDR"

// TestMain runs the child processes of the benchmarks and replica tests when asked to; otherwise it runs the
// tests and examples, with a Redis for the examples.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(runBenchChild(cfg))
	}
	if cfg := os.Getenv(replicaEnv); cfg != "" {
		os.Exit(runReplicaChild(cfg))
	}
	os.Exit(runWithExampleRedis(m))
}

func runWithExampleRedis(m *testing.M) int {
	if os.Getenv(exampleRedisEnv) == "" {
		addr, stop, err := redistest.StartMain()
		if err != nil {
			fmt.Fprintln(os.Stderr, "kf: a Redis for ExampleWithStores:", err)
			return 1
		}
		defer stop()
		if err := os.Setenv(exampleRedisEnv, addr); err != nil {
			fmt.Fprintln(os.Stderr, "kf:", err)
			return 1
		}
	}
	return m.Run()
}
