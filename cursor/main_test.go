package cursor_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(lockHelperEnv) != "" {
		os.Exit(lockHelper())
	}
	goleak.VerifyTestMain(m)
}
