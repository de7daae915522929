//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package cursor

import (
	"fmt"
	"os"
	"runtime"
)

func lockDir(*os.File) (bool, error) {
	return false, fmt.Errorf("cursor: the file store needs flock, which %s lacks; use Memory or cursor/redis", runtime.GOOS)
}

func unlockDir(*os.File) error { return nil }

func syncDir(*os.File) error { return nil }
