package media

import (
	"fmt"
	"time"
)

// WeCom's limits for what a customer-service bot sends (§6, §9; doc 94677, 96484).
const (
	// MaxTextBytes is the largest text content of one send_msg, in bytes (doc 94677).
	MaxTextBytes = 2048
	// MinMediaBytes is the smallest upload WeCom accepts: every file must be larger than 5 bytes (doc 96484).
	MinMediaBytes = 6
	// MaxImageBytes is the largest image upload (JPG or PNG).
	MaxImageBytes = 10 << 20
	// MaxVoiceBytes is the largest voice upload (AMR).
	MaxVoiceBytes = 2 << 20
	// MaxVoiceDuration is the longest voice upload.
	MaxVoiceDuration = 60 * time.Second
	// MaxVideoBytes is the largest video upload (MP4).
	MaxVideoBytes = 10 << 20
	// MaxFileBytes is the largest file upload.
	MaxFileBytes = 20 << 20
)

// Kind is the media type of an upload: the type= parameter of cgi-bin/media/upload.
type Kind string

// The upload kinds WeCom knows.
const (
	KindImage Kind = "image"
	KindVoice Kind = "voice"
	KindVideo Kind = "video"
	KindFile  Kind = "file"
)

// LimitError reports media that breaks one of WeCom's upload limits. Limit names the rule broken
// in words ("image larger than 10 MB", "voice longer than 60 s", ...).
type LimitError struct {
	Kind  Kind
	Limit string
	// Got is the offending value in words ("12.3 MB", "73.2 s", "GIF"), empty when not meaningful.
	Got string
}

// Error names the kind, the limit and, when known, what the input had.
func (e *LimitError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("media: %s: %s", e.Kind, e.Limit)
	}
	return fmt.Sprintf("media: %s: %s (got %s)", e.Kind, e.Limit, e.Got)
}
