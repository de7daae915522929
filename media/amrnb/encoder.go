package amrnb

// #cgo pkg-config: opencore-amrnb
// #include <opencore-amrnb/interf_enc.h>
//
// // encode_frames encodes n frames of 160 samples from pcm into out (room for 32 bytes a frame) and
// // returns the number of bytes written.
// static int encode_frames(void *st, int mode, const short *pcm, int n, unsigned char *out) {
// 	int w = 0;
// 	for (int i = 0; i < n; i++) {
// 		w += Encoder_Interface_Encode(st, (enum Mode)mode, pcm + 160 * i, out + w, 0);
// 	}
// 	return w;
// }
import "C"

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/wxkf/wxkf/media"
)

// Mode is an AMR-NB speech mode (bit rate), 3GPP TS 26.071. Higher modes sound better; all are
// accepted by WeCom.
type Mode int

// The eight AMR-NB modes.
const (
	MR475 Mode = iota // 4.75 kbit/s
	MR515             // 5.15 kbit/s
	MR59              // 5.90 kbit/s
	MR67              // 6.70 kbit/s
	MR74              // 7.40 kbit/s
	MR795             // 7.95 kbit/s
	MR102             // 10.2 kbit/s
	MR122             // 12.2 kbit/s, the default
)

// frameSamples is the number of 8 kHz samples in one 20 ms AMR-NB frame.
const frameSamples = 160

// maxFrameBytes is the largest stored AMR-NB frame (12.2 kbit/s: header octet + 31 octets).
const maxFrameBytes = 32

// batchFrames is how many frames are encoded per cgo call; ctx is checked between batches.
const batchFrames = 50

// ErrInit reports that libopencore-amrnb could not allocate a codec state.
var ErrInit = errors.New("amrnb: cannot initialise codec state")

// Encoder encodes 8 kHz mono PCM to AMR-NB files. It holds only settings (each call gets its own
// codec state), so it is safe for concurrent use.
type Encoder struct {
	mode Mode
	dtx  bool
}

// EncoderOption configures an Encoder.
type EncoderOption func(*Encoder)

// WithMode sets the speech mode; the default is MR122 (12.2 kbit/s, 60 s ≈ 94 KB, far below
// WeCom's 2 MB voice limit).
func WithMode(m Mode) EncoderOption { return func(e *Encoder) { e.mode = m } }

// WithDTX turns discontinuous transmission on or off (default off). With DTX the encoder emits SID
// and NO_DATA frames in silence: smaller files, and natural places for media.SplitAMR to cut.
func WithDTX(on bool) EncoderOption { return func(e *Encoder) { e.dtx = on } }

// NewEncoder returns an Encoder; it fails when the mode is not one of MR475..MR122.
func NewEncoder(opts ...EncoderOption) (*Encoder, error) {
	e := &Encoder{mode: MR122}
	for _, o := range opts {
		o(e)
	}
	if e.mode < MR475 || e.mode > MR122 {
		return nil, fmt.Errorf("amrnb: invalid mode %d", e.mode)
	}
	return e, nil
}

var _ media.AMREncoder = (*Encoder)(nil)

// EncodeAMR encodes 8 kHz mono 16-bit PCM into a complete AMR-NB file ("#!AMR\n" and one frame per
// 160 samples, the last padded with silence). It stops with ctx.Err() when ctx ends.
func (e *Encoder) EncodeAMR(ctx context.Context, pcm []int16) ([]byte, error) {
	frames := (len(pcm) + frameSamples - 1) / frameSamples
	st := C.Encoder_Interface_init(boolInt(e.dtx))
	if st == nil {
		return nil, ErrInit
	}
	defer C.Encoder_Interface_exit(st)

	out := make([]byte, len(media.AMRMagic)+frames*maxFrameBytes)
	w := copy(out, media.AMRMagic)
	// Encoder_Interface_Encode filters its input in place (despite the const), so the library only
	// ever sees this scratch copy, never the caller's samples. A partial last frame is zero-padded.
	in := make([]int16, min(frames, batchFrames)*frameSamples)
	for i := 0; i < frames; i += batchFrames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(batchFrames, frames-i)
		// Bounds: in holds n·160 samples; out has n·32 bytes free after w.
		batch := in[:n*frameSamples]
		clear(batch[copy(batch, pcm[i*frameSamples:]):])
		dst := out[w : w+n*maxFrameBytes]
		w += int(C.encode_frames(st, C.int(e.mode), (*C.short)(unsafe.Pointer(&batch[0])), C.int(n),
			(*C.uchar)(unsafe.Pointer(&dst[0]))))
	}
	return out[:w:w], nil
}

func boolInt(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
