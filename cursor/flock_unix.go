//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package cursor

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive, non-blocking flock on the open directory f. flock locks belong to the open file
// description, so a second OpenDir in the same process conflicts just like another process does.
func lockDir(f *os.File) (locked bool, err error) {
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

func unlockDir(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

// syncDir makes renames inside the directory durable.
func syncDir(f *os.File) error { return f.Sync() }
