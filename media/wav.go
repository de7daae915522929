package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// WAV (RIFF WAVE) reading and writing, for voice input and for handing decoded voice to speech
// recognition. Only uncompressed PCM is read: 8-bit unsigned, 16/24/32-bit signed integer and 32/64-bit
// float samples, 1–8 interleaved channels, plain or WAVE_FORMAT_EXTENSIBLE headers, RIFF or RF64.

// Sentinel errors of the WAV decoder; match with errors.Is.
var (
	// ErrNotWAV reports data without a RIFF/RF64 "WAVE" header.
	ErrNotWAV = errors.New("media: not a WAV file")
	// ErrUnsupportedWAV reports a WAV file whose encoding the decoder does not read (compressed
	// formats, unusual bit depths, more than 8 channels, sample rates out of range).
	ErrUnsupportedWAV = errors.New("media: unsupported WAV encoding")
	// ErrCorruptWAV reports a WAV file whose chunks are missing or malformed.
	ErrCorruptWAV = errors.New("media: corrupt WAV file")
)

// WAV format tags (Microsoft mmreg.h).
const (
	wavFormatPCM        = 1
	wavFormatFloat      = 3
	wavFormatExtensible = 0xFFFE
	wavMaxChannels      = 8
)

// wavInfo is the parsed header of a WAV file.
type wavInfo struct {
	format   int // wavFormatPCM or wavFormatFloat
	channels int
	rate     int
	bytes    int    // bytes per sample of one channel
	data     []byte // sample data, cut to whole frames
}

// frames is the number of sample frames (one sample per channel) in the file.
func (w *wavInfo) frames() int { return len(w.data) / (w.channels * w.bytes) }

// parseWAV reads the header of a WAV file and locates its sample data. A data chunk whose size runs
// past the end of b (streamed files write 0 or 0xFFFFFFFF, RF64 keeps the size elsewhere) is taken to
// end at the end of b, as does a data size of 0 when the RIFF size is unset too.
func parseWAV(b []byte) (*wavInfo, error) {
	if len(b) < 12 || (string(b[:4]) != "RIFF" && string(b[:4]) != "RF64") || string(b[8:12]) != "WAVE" {
		return nil, ErrNotWAV
	}
	var info *wavInfo
	for off := 12; ; {
		if len(b)-off < 8 {
			if info == nil {
				return nil, fmt.Errorf("%w: no fmt chunk", ErrCorruptWAV)
			}
			return nil, fmt.Errorf("%w: no data chunk", ErrCorruptWAV)
		}
		id, size := string(b[off:off+4]), int64(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			if size < 16 || size > int64(len(body)) {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrCorruptWAV, size)
			}
			var err error
			if info, err = parseWAVFormat(body[:size]); err != nil {
				return nil, err
			}
		case "data":
			if info == nil {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrCorruptWAV)
			}
			// A writer that could not seek back leaves 0 or 0xFFFFFFFF in the sizes.
			riff := binary.LittleEndian.Uint32(b[4:])
			if size > int64(len(body)) || size == 0 && (riff == 0 || riff == math.MaxUint32) {
				size = int64(len(body))
			}
			frame := info.channels * info.bytes
			info.data = body[:size-size%int64(frame)]
			return info, nil
		}
		// Chunks are padded to an even size.
		next := int64(off) + 8 + size + size&1
		if next > int64(len(b)) {
			return nil, fmt.Errorf("%w: %q chunk of %d bytes runs past the end", ErrCorruptWAV, id, size)
		}
		off = int(next)
	}
}

// parseWAVFormat reads a fmt chunk body (at least 16 bytes).
func parseWAVFormat(f []byte) (*wavInfo, error) {
	format := int(binary.LittleEndian.Uint16(f[0:]))
	channels := int(binary.LittleEndian.Uint16(f[2:]))
	rate := int64(binary.LittleEndian.Uint32(f[4:]))
	bits := int(binary.LittleEndian.Uint16(f[14:]))
	if format == wavFormatExtensible {
		// WAVEFORMATEXTENSIBLE: cbSize, valid bits, channel mask, then the sub-format GUID whose
		// first two bytes are the real format tag.
		if len(f) < 40 {
			return nil, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes", ErrCorruptWAV, len(f))
		}
		format = int(binary.LittleEndian.Uint16(f[24:]))
	}
	switch {
	case format != wavFormatPCM && format != wavFormatFloat:
		return nil, fmt.Errorf("%w: format tag 0x%04x (only PCM and IEEE float)", ErrUnsupportedWAV, format)
	case channels < 1 || channels > wavMaxChannels:
		return nil, fmt.Errorf("%w: %d channels (want 1 to %d)", ErrUnsupportedWAV, channels, wavMaxChannels)
	case rate < MinSampleRate || rate > MaxSampleRate:
		return nil, fmt.Errorf("%w: %w: %d Hz", ErrUnsupportedWAV, ErrSampleRate, rate)
	case format == wavFormatPCM && bits != 8 && bits != 16 && bits != 24 && bits != 32:
		return nil, fmt.Errorf("%w: %d-bit PCM", ErrUnsupportedWAV, bits)
	case format == wavFormatFloat && bits != 32 && bits != 64:
		return nil, fmt.Errorf("%w: %d-bit float", ErrUnsupportedWAV, bits)
	}
	return &wavInfo{format: format, channels: channels, rate: int(rate), bytes: bits / 8}, nil
}

// DecodeWAV decodes an uncompressed WAV file to 16-bit mono PCM at the file's sample rate, mixing
// channels by averaging them. It reads 8-bit unsigned, 16/24/32-bit signed and 32/64-bit float
// samples (wider samples are rounded to 16 bits), 1–8 channels, rates within
// [MinSampleRate, MaxSampleRate]. Errors match ErrNotWAV, ErrUnsupportedWAV or ErrCorruptWAV.
func DecodeWAV(b []byte) (pcm []int16, rate int, err error) {
	info, err := parseWAV(b)
	if err != nil {
		return nil, 0, err
	}
	pcm = make([]int16, info.frames())
	info.decode(pcm, 0)
	return pcm, info.rate, nil
}

// decode writes the mono mix of len(dst) frames starting at frame first into dst.
func (w *wavInfo) decode(dst []int16, first int) {
	frame := w.channels * w.bytes
	data := w.data[first*frame : (first+len(dst))*frame]
	if w.channels == 1 && w.bytes == 2 && w.format == wavFormatPCM {
		for i := range dst {
			dst[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		return
	}
	for i := range dst {
		f := data[i*frame : (i+1)*frame]
		var sum float64
		for c := range w.channels {
			sum += w.sample(f[c*w.bytes:])
		}
		dst[i] = clamp16f(sum / float64(w.channels))
	}
}

// sample reads one sample as a value on the 16-bit scale.
func (w *wavInfo) sample(s []byte) float64 {
	if w.format == wavFormatFloat {
		if w.bytes == 4 {
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(s))) * 32768
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(s)) * 32768
	}
	switch w.bytes {
	case 1:
		return float64(int(s[0])-128) * 256
	case 2:
		return float64(int16(binary.LittleEndian.Uint16(s)))
	case 3:
		return float64(int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24)) / 65536
	default:
		return float64(int32(binary.LittleEndian.Uint32(s))) / 65536
	}
}

// clamp16f rounds v to the nearest int16, saturating (NaN becomes 0).
func clamp16f(v float64) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	case v == v:
		return int16(math.Round(v))
	default:
		return 0
	}
}

// EncodeWAV returns pcm as a 16-bit mono PCM WAV file at sampleRate Hz (a 44-byte canonical RIFF
// header followed by the samples), the usual input of speech-recognition services. Decoded voice is
// at VoiceSampleRate (8 kHz).
func EncodeWAV(pcm []int16, sampleRate int) []byte {
	n := uint32(min(int64(len(pcm))*2, math.MaxUint32-36))
	n -= n % 2
	out := make([]byte, 44, 44+int(n))
	copy(out, "RIFF")
	binary.LittleEndian.PutUint32(out[4:], 36+n)
	copy(out[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(out[16:], 16)
	binary.LittleEndian.PutUint16(out[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(out[22:], 1)
	binary.LittleEndian.PutUint32(out[24:], uint32(sampleRate))
	binary.LittleEndian.PutUint32(out[28:], uint32(sampleRate)*2)
	binary.LittleEndian.PutUint16(out[32:], 2)
	binary.LittleEndian.PutUint16(out[34:], 16)
	copy(out[36:], "data")
	binary.LittleEndian.PutUint32(out[40:], n)
	for _, s := range pcm[:n/2] {
		out = binary.LittleEndian.AppendUint16(out, uint16(s))
	}
	return out
}
