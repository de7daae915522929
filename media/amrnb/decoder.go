package amrnb

// #cgo pkg-config: opencore-amrnb
// #include <opencore-amrnb/interf_dec.h>
import "C"

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/wxkf/wxkf/media"
)

// Decoder decodes AMR-NB files to 8 kHz mono PCM, e.g. voice messages from sync_msg (AMR with the
// default voice_format 0; §4, §9) on their way to speech recognition. It holds only settings (each
// call gets its own codec state), so it is safe for concurrent use.
type Decoder struct {
	maxDur time.Duration
}

// DecoderOption configures a Decoder.
type DecoderOption func(*Decoder)

// WithMaxDuration caps the audio a Decoder produces (default media.MaxAudioInput): a 1-byte NO_DATA
// frame decodes to 320 bytes of PCM, so a small file can expand a lot.
func WithMaxDuration(d time.Duration) DecoderOption { return func(dec *Decoder) { dec.maxDur = d } }

// NewDecoder returns a Decoder.
func NewDecoder(opts ...DecoderOption) *Decoder {
	d := &Decoder{maxDur: media.MaxAudioInput}
	for _, o := range opts {
		o(d)
	}
	return d
}

var _ media.AMRDecoder = (*Decoder)(nil)

// DecodeAMR decodes a complete AMR-NB file to 8 kHz mono 16-bit PCM, 160 samples per frame of any
// type (SID and NO_DATA frames become comfort noise or concealment, frames with Q = 0 are decoded as
// bad frames). The file is validated first (errors match media.ErrNotAMRNB, media.ErrCorruptAMR);
// audio longer than the Decoder's cap fails with media.ErrAudioTooLong. It stops with ctx.Err() when
// ctx ends.
func (d *Decoder) DecodeAMR(ctx context.Context, amr []byte) ([]int16, error) {
	f, err := media.ParseAMR(amr)
	if err != nil {
		return nil, err
	}
	if dur := f.Duration(); d.maxDur > 0 && dur > d.maxDur {
		return nil, fmt.Errorf("%w: %v of AMR (limit %v)", media.ErrAudioTooLong, dur, d.maxDur)
	}
	st := C.Decoder_Interface_init()
	if st == nil {
		return nil, ErrInit
	}
	defer C.Decoder_Interface_exit(st)

	pcm := make([]int16, len(f.Frames)*frameSamples)
	// The library reads the frame size from the header octet; every frame goes through a
	// zero-padded buffer of the largest frame size so no read can leave Go memory.
	var frame [maxFrameBytes]byte
	for i, fr := range f.Frames {
		if i%batchFrames == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		frame = [maxFrameBytes]byte{}
		copy(frame[:], fr.Raw)
		if fr.Type > media.AMRSID && fr.Type != media.AMRNoData {
			// SID frames of GSM-EFR, TDMA-EFR and PDC-EFR mean nothing to an AMR decoder.
			frame[0] = byte(media.AMRNoData)<<3 | 0x04
		}
		bfi := C.int(0)
		if !fr.Good {
			bfi = 1
		}
		out := pcm[i*frameSamples : (i+1)*frameSamples]
		C.Decoder_Interface_Decode(st, (*C.uchar)(unsafe.Pointer(&frame[0])), (*C.short)(unsafe.Pointer(&out[0])), bfi)
	}
	return pcm, nil
}

// DecodeToWAV decodes a complete AMR-NB file to a 16-bit mono 8 kHz WAV file (media.EncodeWAV), the
// input most speech-recognition services take.
func (d *Decoder) DecodeToWAV(ctx context.Context, amr []byte) ([]byte, error) {
	pcm, err := d.DecodeAMR(ctx, amr)
	if err != nil {
		return nil, err
	}
	return media.EncodeWAV(pcm, media.VoiceSampleRate), nil
}
