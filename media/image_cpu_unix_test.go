//go:build unix

package media

import (
	"syscall"
	"time"
)

// imageCPUTime is the CPU time (user + system) this process has used: on a shared, loaded machine a
// benchmark's wall time mostly measures the neighbours, its CPU time measures the code.
func imageCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
