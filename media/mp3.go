package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hajimehoshi/go-mp3"
)

// MP3 input is decoded in pure Go by github.com/hajimehoshi/go-mp3 (MPEG-1 and MPEG-2 Layer III).
// This file frames the input first (ISO/IEC 11172-3 §2.4.2.3 headers) so that go-mp3 only ever sees
// data that starts like MP3, and bounds what it produces.

// Sentinel errors of the MP3 decoder; match with errors.Is.
var (
	// ErrNotMP3 reports data in which no MPEG audio frame can be found.
	ErrNotMP3 = errors.New("media: not an MP3 file")
	// ErrUnsupportedMP3 reports MPEG audio the pure-Go decoder does not handle: Layer I/II and
	// MPEG-2.5 (8–12 kHz). ToVoice hands such input to ffmpeg when it is available.
	ErrUnsupportedMP3 = errors.New("media: unsupported MPEG audio")
	// ErrCorruptMP3 reports an MP3 stream the decoder failed on.
	ErrCorruptMP3 = errors.New("media: corrupt MP3 file")
)

// mpegHeader is a parsed MPEG audio frame header.
type mpegHeader struct {
	version int // 1, 2 or 25 (MPEG-2.5)
	layer   int // 1, 2 or 3
	rate    int // Hz
	size    int // frame length in bytes
}

// Bitrates in kbit/s by [MPEG-1?][layer-1][index] (ISO/IEC 11172-3 and 13818-3 tables).
var mpegBitrates = [2][3][15]int{
	{ // MPEG-2 and 2.5
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	},
	{ // MPEG-1
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	},
}

// parseMPEGHeader parses a 32-bit MPEG audio frame header; free-format (bitrate index 0) and
// reserved values are rejected.
func parseMPEGHeader(h uint32) (mpegHeader, bool) {
	if h>>21 != 0x7FF {
		return mpegHeader{}, false
	}
	var hdr mpegHeader
	switch h >> 19 & 3 {
	case 0:
		hdr.version = 25
	case 2:
		hdr.version = 2
	case 3:
		hdr.version = 1
	default:
		return mpegHeader{}, false
	}
	layerBits := h >> 17 & 3
	brIndex := h >> 12 & 0xF
	srIndex := h >> 10 & 3
	if layerBits == 0 || brIndex == 0 || brIndex == 15 || srIndex == 3 || h&3 == 2 {
		return mpegHeader{}, false
	}
	hdr.layer = 4 - int(layerBits)
	hdr.rate = [3]int{44100, 48000, 32000}[srIndex]
	mpeg1 := 0
	switch hdr.version {
	case 1:
		mpeg1 = 1
	case 2:
		hdr.rate /= 2
	case 25:
		hdr.rate /= 4
	}
	bitrate := mpegBitrates[mpeg1][hdr.layer-1][brIndex] * 1000
	pad := int(h >> 9 & 1)
	switch {
	case hdr.layer == 1:
		hdr.size = (12*bitrate/hdr.rate + pad) * 4
	case hdr.layer == 3 && hdr.version != 1:
		hdr.size = 72*bitrate/hdr.rate + pad
	default:
		hdr.size = 144*bitrate/hdr.rate + pad
	}
	return hdr, true
}

// mpegFollows reports whether b, which starts with a frame with header hdr, continues with another
// frame of the same stream right after it (or ends within 4 bytes of it) — the usual check that a
// sync word is not a coincidence.
func mpegFollows(b []byte, hdr mpegHeader) bool {
	if len(b) < hdr.size+4 {
		return len(b) >= hdr.size
	}
	n := b[hdr.size:]
	next, ok := parseMPEGHeader(uint32(n[0])<<24 | uint32(n[1])<<16 | uint32(n[2])<<8 | uint32(n[3]))
	return ok && next.version == hdr.version && next.layer == hdr.layer && next.rate == hdr.rate
}

// findMPEG returns the offset and header of the first MPEG audio frame of b (after ID3v2 tags),
// searching the first 64 KiB for a sync word confirmed by the next frame.
func findMPEG(b []byte) (int, mpegHeader, error) {
	start := len(b) - len(skipID3v2(b))
	for off := start; off+4 <= len(b) && off-start < 64<<10; off++ {
		if b[off] != 0xFF {
			continue
		}
		h := uint32(b[off])<<24 | uint32(b[off+1])<<16 | uint32(b[off+2])<<8 | uint32(b[off+3])
		if hdr, ok := parseMPEGHeader(h); ok && mpegFollows(b[off:], hdr) {
			return off, hdr, nil
		}
	}
	return 0, mpegHeader{}, ErrNotMP3
}

// DecodeMP3 decodes an MP3 file (MPEG-1/2 Layer III) to 16-bit mono PCM at its sample rate, mixing
// stereo by averaging. Audio longer than MaxAudioInput fails with ErrAudioTooLong; other errors match
// ErrNotMP3, ErrUnsupportedMP3 or ErrCorruptMP3. Long MPEG-1 files are decoded on several cores.
func DecodeMP3(b []byte) (pcm []int16, rate int, err error) {
	return decodeMP3(context.Background(), b, MaxAudioInput, 0)
}

// mp3To8k decodes an MP3 file straight to 8 kHz mono PCM.
func mp3To8k(ctx context.Context, b []byte, maxIn time.Duration) ([]int16, error) {
	pcm, _, err := decodeMP3(ctx, b, maxIn, VoiceSampleRate)
	return pcm, err
}

// decodeMP3 decodes b to mono PCM of at most maxIn, resampled to toRate unless toRate is 0. It
// returns the MP3's own sample rate.
func decodeMP3(ctx context.Context, b []byte, maxIn time.Duration, toRate int) ([]int16, int, error) {
	off, hdr, err := findMPEG(b)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case hdr.layer != 3:
		return nil, 0, fmt.Errorf("%w: MPEG-%d Layer %d", ErrUnsupportedMP3, hdr.version, hdr.layer)
	case hdr.version == 25:
		return nil, 0, fmt.Errorf("%w: MPEG-2.5 (%d Hz)", ErrUnsupportedMP3, hdr.rate)
	}
	var r *Resampler
	if toRate != 0 {
		if r, err = NewResampler(hdr.rate, toRate); err != nil {
			return nil, 0, err
		}
	}
	limit := maxSamples(maxIn, hdr.rate)
	if pcm, ok, err := decodeMP3Chunks(ctx, b, off, hdr, limit, r, mp3Workers(), mp3ChunkFrames); ok {
		if err != nil {
			return nil, 0, err
		}
		return pcm, hdr.rate, nil
	}
	var out []int16
	err = pumpMP3(ctx, bytes.NewReader(b[off:]), hdr.rate, 0, limit, func(mono []int16) error {
		if r != nil {
			out = r.Write(out, mono)
		} else {
			out = append(out, mono...)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if r != nil {
		out = r.Flush(out)
	}
	return out, hdr.rate, nil
}

// pumpMP3 decodes the MP3 stream src with go-mp3 and hands mono PCM blocks to sink, dropping the
// first skip samples. More than limit samples after those fail with ErrAudioTooLong.
func pumpMP3(ctx context.Context, src io.Reader, rate int, skip, limit int64, sink func([]int16) error) error {
	// A plain io.Reader (not an io.Seeker) keeps go-mp3 from pre-scanning the whole stream.
	d, err := newMP3Decoder(struct{ io.Reader }{src})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptMP3, err)
	}
	if d.SampleRate() != rate {
		return fmt.Errorf("%w: first frame says %d Hz, decoder %d Hz", ErrCorruptMP3, rate, d.SampleRate())
	}
	var total int64
	raw := make([]byte, 4*4608) // go-mp3 always yields 16-bit stereo; 4 MPEG-1 frames
	mono := make([]int16, len(raw)/4)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := readMP3(d, raw)
		frames := n / 4
		for i := range frames {
			l := int32(int16(uint16(raw[4*i]) | uint16(raw[4*i+1])<<8))
			r := int32(int16(uint16(raw[4*i+2]) | uint16(raw[4*i+3])<<8))
			mono[i] = int16((l + r) >> 1)
		}
		block := mono[:frames]
		if skip > 0 {
			k := min(skip, int64(len(block)))
			block, skip = block[k:], skip-k
		}
		if total += int64(len(block)); total > limit {
			return mp3TooLong(limit, rate)
		}
		if len(block) > 0 {
			if err := sink(block); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorruptMP3, err)
		}
	}
}

// newMP3Decoder wraps mp3.NewDecoder, turning a panic on hostile input into an error.
func newMP3Decoder(r io.Reader) (d *mp3.Decoder, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return mp3.NewDecoder(r)
}

// readMP3 fills buf from d as far as it can (whole 4-byte sample frames), turning a panic on
// hostile input into an error.
func readMP3(d *mp3.Decoder, buf []byte) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	for n < len(buf) && err == nil {
		var k int
		k, err = d.Read(buf[n:])
		n += k
	}
	return n - n%4, err
}
