package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// Chunked MP3 decoding. go-mp3 runs at roughly 40× real time on one core, the slowest stage of
// ToVoice, so long MPEG-1 streams are cut into chunks of frames decoded on all cores. A Layer III
// frame depends on its predecessors through the bit reservoir (main_data_begin, up to 511 bytes of
// earlier frames' main data, ISO/IEC 11172-3 §2.4.1.7), the IMDCT overlap (one granule) and the
// synthesis filterbank (512 samples). A chunk's decoder therefore starts mp3WarmUp frames early,
// behind a "primer": a silent frame (zero side info) whose main data area holds the reservoir bytes
// the first real frame refers to. After the warm-up every state matches a decoder that ran from the
// start, so the joined chunks are bit-identical to sequential decoding (TestDecodeMP3ChunksExact).
// Resampling happens in the chunks too, with the look-behind and look-ahead the filter needs.

const (
	// mp3ChunkFrames is the smallest chunk (about 5 s at 44.1 kHz) worth a decoder of its own.
	mp3ChunkFrames = 200
	// mp3WarmUp is how many frames before its first kept frame a chunk starts decoding: the first
	// rebuilds the IMDCT overlap, the second flushes the filterbank; one more for safety.
	mp3WarmUp = 3
	// mpeg1SamplesPerFrame is the number of samples per channel of an MPEG-1 Layer III frame.
	mpeg1SamplesPerFrame = 1152
)

// mp3Workers is how many chunks of an MP3 stream are decoded at once.
func mp3Workers() int { return min(runtime.GOMAXPROCS(0), 8) }

// decodeMP3Chunks decodes b (first frame at first, with header hdr) in chunks of at least minChunk
// frames on up to workers goroutines, resampled with r when r is not nil. ok is false when the
// stream does not lend itself to chunking (short, not MPEG-1, one worker); the caller then decodes
// it sequentially. When a chunk fails, the stream is not trusted to chunk either (ok false), so
// decoding errors always come from sequential decoding.
func decodeMP3Chunks(ctx context.Context, b []byte, first int, hdr mpegHeader, limit int64, r *Resampler, workers, minChunk int) (pcm []int16, ok bool, err error) {
	if hdr.version != 1 || hdr.layer != 3 || workers < 2 {
		return nil, false, nil
	}
	off := indexMPEG(b, first, hdr)
	n := len(off) - 1
	chunks := min(2*workers, n/minChunk)
	if chunks < 2 {
		return nil, false, nil
	}
	const spf = mpeg1SamplesPerFrame
	if int64(n)*spf > limit {
		return nil, true, mp3TooLong(limit, hdr.rate)
	}
	half := 0
	if r != nil {
		half = r.half
	}
	warm := mp3WarmUp + half/spf // frames of look-behind
	ahead := 1 + half/spf        // frames of look-ahead

	parts := make([][]int16, chunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for j := range chunks {
		a, z := j*n/chunks, (j+1)*n/chunks
		last := j == chunks-1
		g.Go(func() error {
			s := max(0, a-warm)
			end := len(b)
			if !last {
				end = off[min(n, z+ahead)]
			}
			var src io.Reader = bytes.NewReader(b[off[s]:end])
			var skip int64
			if s > 0 {
				primer := mp3Primer(b, off, s)
				if primer == nil {
					return errNoPrimer
				}
				src, skip = io.MultiReader(bytes.NewReader(primer), src), spf
			}
			x := make([]int16, 0, (min(n, z+ahead)-s)*spf)
			err := pumpMP3(gctx, src, hdr.rate, skip, limit-int64(s)*spf, func(mono []int16) error {
				x = append(x, mono...)
				return nil
			})
			if err != nil {
				return err
			}
			// x holds samples from s·spf on. Keep [a·spf, z·spf), or to the end for the last chunk.
			x0, from, to := int64(s)*spf, int64(a)*spf, int64(z)*spf
			if last {
				to = x0 + int64(len(x))
			}
			if to > x0+int64(len(x)) || from > to {
				return errShortChunk
			}
			if r == nil {
				parts[j] = x[from-x0 : to-x0]
				return nil
			}
			ceil := func(t int64) int64 { return (t*int64(r.l) + int64(r.m) - 1) / int64(r.m) }
			parts[j] = r.span(nil, x, x0, ceil(from), ceil(to))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, true, ctxErr
		}
		if errors.Is(err, ErrAudioTooLong) {
			return nil, true, err
		}
		return nil, false, nil
	}
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	pcm = make([]int16, 0, total)
	for _, p := range parts {
		pcm = append(pcm, p...)
	}
	return pcm, true, nil
}

var (
	errNoPrimer   = errors.New("media: no MP3 primer frame fits")
	errShortChunk = errors.New("media: MP3 chunk decoded short")
)

// mp3TooLong is the ErrAudioTooLong of an MP3 stream over limit samples at rate.
func mp3TooLong(limit int64, rate int) error {
	return fmt.Errorf("%w: MP3 longer than %.0f s", ErrAudioTooLong, float64(limit)/float64(rate))
}

// indexMPEG lists the offsets of the consecutive frames of b that start at first and share hdr's
// version, layer and rate, plus the end of the last one. It stops at anything else.
func indexMPEG(b []byte, first int, hdr mpegHeader) []int {
	off := []int{first}
	for p := first; p+4 <= len(b); {
		h, ok := parseMPEGHeader(uint32(b[p])<<24 | uint32(b[p+1])<<16 | uint32(b[p+2])<<8 | uint32(b[p+3]))
		if !ok || h.version != hdr.version || h.layer != hdr.layer || h.rate != hdr.rate || p+h.size > len(b) {
			break
		}
		p += h.size
		off = append(off, p)
	}
	return off
}

// mpegMainData returns the main data area of the MPEG-1 Layer III frame at b[off:end]: what follows
// the header, the CRC if any and the side info.
func mpegMainData(b []byte, off, end int) []byte {
	start := off + 4 + mpeg1SideInfo(b[off+3])
	if b[off+1]&1 == 0 { // protection bit 0: a 16-bit CRC follows the header
		start += 2
	}
	if start > end {
		return nil
	}
	return b[start:end]
}

// mpeg1SideInfo is the side info size of an MPEG-1 Layer III frame by the header's mode byte.
func mpeg1SideInfo(modeByte byte) int {
	if modeByte>>6 == 3 { // single channel
		return 17
	}
	return 32
}

// mp3Primer builds a silent frame to put before frame k (k > 0) of the MPEG-1 stream laid out by
// off: same header but no CRC and a bitrate whose main data area can hold the 511 bytes of main
// data before frame k (fewer if the stream has fewer), zero side info (main_data_begin 0, no
// granule data), and those bytes at the end of its main data area, where frame k's
// main_data_begin points. It returns nil if no bitrate is large enough.
func mp3Primer(b []byte, off []int, k int) []byte {
	const reservoir = 511 // main_data_begin is 9 bits in MPEG-1
	var tail []byte       // main data bytes before frame k, oldest first
	for j := k - 1; j >= 0 && len(tail) < reservoir; j-- {
		tail = append(append([]byte(nil), mpegMainData(b, off[j], off[j+1])...), tail...)
	}
	tail = tail[max(0, len(tail)-reservoir):]

	h := uint32(b[off[k]])<<24 | uint32(b[off[k]+1])<<16 | uint32(b[off[k]+2])<<8 | uint32(b[off[k]+3])
	h |= 1 << 16    // protection bit 1: no CRC
	h &^= 1 << 9    // no padding
	h &^= 0xF << 12 // bitrate index, chosen below
	si := mpeg1SideInfo(byte(h))
	for idx := uint32(1); idx < 15; idx++ {
		hdr, ok := parseMPEGHeader(h | idx<<12)
		if !ok || hdr.size-4-si < len(tail) {
			continue
		}
		f := make([]byte, hdr.size)
		binary.BigEndian.PutUint32(f, h|idx<<12)
		copy(f[hdr.size-len(tail):], tail)
		return f
	}
	return nil
}
