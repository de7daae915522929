//go:build !unix

package media

import "time"

// imageCPUTime is not measured on this platform.
func imageCPUTime() time.Duration { return 0 }
