package media

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wavChunk is one RIFF chunk for building test files.
type wavChunk struct {
	id   string
	size uint32 // written size; 0 means len(body)
	body []byte
}

// buildWAV assembles a RIFF WAVE file from chunks, padding odd bodies.
func buildWAV(riffSize uint32, chunks ...wavChunk) []byte {
	out := []byte("RIFF\x00\x00\x00\x00WAVE")
	for _, c := range chunks {
		size := c.size
		if size == 0 {
			size = uint32(len(c.body))
		}
		out = append(out, c.id...)
		out = binary.LittleEndian.AppendUint32(out, size)
		out = append(out, c.body...)
		if len(c.body)%2 == 1 {
			out = append(out, 0)
		}
	}
	if riffSize == 0 {
		riffSize = uint32(len(out) - 8)
	}
	binary.LittleEndian.PutUint32(out[4:], riffSize)
	return out
}

// fmtChunk is a 16-byte PCM/float fmt chunk.
func fmtChunk(format, channels, rate, bits int) wavChunk {
	b := binary.LittleEndian.AppendUint16(nil, uint16(format))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	return wavChunk{id: "fmt ", body: b}
}

// extensibleFmt is a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk with the given sub-format.
func extensibleFmt(sub, channels, rate, bits int) wavChunk {
	c := fmtChunk(wavFormatExtensible, channels, rate, bits)
	c.body = binary.LittleEndian.AppendUint16(c.body, 22)
	c.body = binary.LittleEndian.AppendUint16(c.body, uint16(bits))
	c.body = binary.LittleEndian.AppendUint32(c.body, 3)
	guid := []byte{0, 0, 0, 0, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
	binary.LittleEndian.PutUint16(guid, uint16(sub))
	c.body = append(c.body, guid...)
	return c
}

func le16(v ...int16) []byte {
	var b []byte
	for _, s := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func TestEncodeWAVHeader(t *testing.T) {
	t.Parallel()
	got := EncodeWAV([]int16{1, -2}, 8000)
	want := []byte("RIFF" + "\x28\x00\x00\x00" + "WAVE" + "fmt " + "\x10\x00\x00\x00" +
		"\x01\x00" + "\x01\x00" + "\x40\x1f\x00\x00" + "\x80\x3e\x00\x00" + "\x02\x00" + "\x10\x00" +
		"data" + "\x04\x00\x00\x00" + "\x01\x00" + "\xfe\xff")
	assert.Equal(t, want, got)
}

func TestWAVRoundTrip(t *testing.T) {
	t.Parallel()
	for _, rate := range []int{8000, 16000, 44100, 48000} {
		in := speechLike(rate, 0.3, 3)
		pcm, r, err := DecodeWAV(EncodeWAV(in, rate))
		require.NoError(t, err)
		assert.Equal(t, rate, r)
		assert.Equal(t, in, pcm)
	}
	pcm, r, err := DecodeWAV(EncodeWAV(nil, 8000))
	require.NoError(t, err)
	assert.Equal(t, 8000, r)
	assert.Empty(t, pcm)
}

func TestDecodeWAVFormats(t *testing.T) {
	t.Parallel()
	f32 := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	tests := []struct {
		name string
		fmt  wavChunk
		data []byte
		want []int16
	}{
		{"16-bit stereo averages", fmtChunk(1, 2, 44100, 16),
			le16(1000, 3000, 32767, 32767, -32768, -32768, 32767, -32768, -3, 0),
			[]int16{2000, 32767, -32768, -1, -2}}, // halves round away from zero
		{"8-bit unsigned", fmtChunk(1, 1, 8000, 8), []byte{128, 255, 0, 129}, []int16{0, 32512, -32768, 256}},
		{"8-bit stereo", fmtChunk(1, 2, 8000, 8), []byte{128, 130, 0, 255}, []int16{256, -128}},
		{"24-bit", fmtChunk(1, 1, 48000, 24),
			[]byte{0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0x00, 0x01, 0x00, 0x80, 0xff, 0xff},
			[]int16{32767, -32768, 1, -1}},
		{"32-bit int", fmtChunk(1, 1, 48000, 32), binary.LittleEndian.AppendUint32(
			binary.LittleEndian.AppendUint32(nil, 0x7fffffff), 0xffff0000), []int16{32767, -1}},
		{"32-bit float clamps, NaN is silence", fmtChunk(3, 1, 48000, 32),
			f32(0.5, -0.5, 1.5, -2, float32(math.NaN()), float32(math.Inf(1))),
			[]int16{16384, -16384, 32767, -32768, 0, 32767}},
		{"64-bit float stereo", fmtChunk(3, 2, 16000, 64), f64(0.25, 0.75), []int16{16384}},
		{"extensible PCM", extensibleFmt(1, 1, 16000, 16), le16(5, -5), []int16{5, -5}},
		{"extensible float", extensibleFmt(3, 1, 16000, 32), f32(0.25), []int16{8192}},
		{"6 channels", fmtChunk(1, 6, 48000, 16), le16(6, 6, 6, 6, 6, 600), []int16{105}},
		{"partial trailing frame dropped", fmtChunk(1, 2, 8000, 16), le16(2, 4, 6), []int16{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pcm, rate, err := DecodeWAV(buildWAV(0, tt.fmt, wavChunk{id: "data", body: tt.data}))
			require.NoError(t, err)
			assert.Equal(t, int(binary.LittleEndian.Uint32(tt.fmt.body[4:])), rate)
			assert.Equal(t, tt.want, pcm)
		})
	}
}

func TestDecodeWAVChunkLayout(t *testing.T) {
	t.Parallel()
	data := wavChunk{id: "data", body: le16(7, 8, 9)}
	tests := []struct {
		name string
		wav  []byte
		want []int16
	}{
		{"odd LIST chunk before fmt is skipped with its pad byte",
			buildWAV(0, wavChunk{id: "LIST", body: []byte("INFOx")}, fmtChunk(1, 1, 8000, 16), data), []int16{7, 8, 9}},
		{"chunks after data are ignored",
			buildWAV(0, fmtChunk(1, 1, 8000, 16), data, wavChunk{id: "LIST", body: []byte("abcd")}), []int16{7, 8, 9}},
		{"streamed: data size 0xFFFFFFFF runs to the end",
			buildWAV(0xFFFFFFFF, fmtChunk(1, 1, 8000, 16), wavChunk{id: "data", size: 0xFFFFFFFF, body: le16(1, 2)}), []int16{1, 2}},
		{"streamed: data size 0 with RIFF size 0 runs to the end",
			func() []byte {
				b := buildWAV(0, fmtChunk(1, 1, 8000, 16), wavChunk{id: "data", body: le16(1, 2)})
				binary.LittleEndian.PutUint32(b[4:], 0)
				binary.LittleEndian.PutUint32(b[40:], 0)
				return b
			}(), []int16{1, 2}},
		{"finished empty data chunk stays empty",
			buildWAV(0, fmtChunk(1, 1, 8000, 16), wavChunk{id: "data"}, wavChunk{id: "LIST", body: []byte("abcd")}), []int16{}},
		{"data size past the end is cut to the file",
			buildWAV(0, fmtChunk(1, 1, 8000, 16), wavChunk{id: "data", size: 1000, body: le16(1, 2)}), []int16{1, 2}},
		{"RF64", func() []byte {
			b := buildWAV(0xFFFFFFFF, fmtChunk(1, 1, 8000, 16), wavChunk{id: "data", size: 0xFFFFFFFF, body: le16(4)})
			copy(b, "RF64")
			return b
		}(), []int16{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pcm, _, err := DecodeWAV(tt.wav)
			require.NoError(t, err)
			assert.Equal(t, tt.want, pcm)
		})
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	t.Parallel()
	data := wavChunk{id: "data", body: le16(1, 2)}
	riffx := buildWAV(0, fmtChunk(1, 1, 8000, 16), data)
	copy(riffx, "RIFX")
	tests := []struct {
		name string
		wav  []byte
		want error
	}{
		{"empty", nil, ErrNotWAV},
		{"AMR", []byte("#!AMR\n\x3c"), ErrNotWAV},
		{"RIFF but AVI", []byte("RIFF\x04\x00\x00\x00AVI "), ErrNotWAV},
		{"big-endian RIFX", riffx, ErrNotWAV},
		{"ADPCM", buildWAV(0, fmtChunk(2, 1, 8000, 4), data), ErrUnsupportedWAV},
		{"extensible ADPCM", buildWAV(0, extensibleFmt(2, 1, 8000, 16), data), ErrUnsupportedWAV},
		{"no channels", buildWAV(0, fmtChunk(1, 0, 8000, 16), data), ErrUnsupportedWAV},
		{"9 channels", buildWAV(0, fmtChunk(1, 9, 8000, 16), data), ErrUnsupportedWAV},
		{"rate 0", buildWAV(0, fmtChunk(1, 1, 0, 16), data), ErrSampleRate},
		{"rate 1 MHz", buildWAV(0, fmtChunk(1, 1, 1000000, 16), data), ErrUnsupportedWAV},
		{"12-bit", buildWAV(0, fmtChunk(1, 1, 8000, 12), data), ErrUnsupportedWAV},
		{"16-bit float", buildWAV(0, fmtChunk(3, 1, 8000, 16), data), ErrUnsupportedWAV},
		{"no fmt", buildWAV(0, wavChunk{id: "LIST", body: []byte("abcd")}), ErrCorruptWAV},
		{"data before fmt", buildWAV(0, data, fmtChunk(1, 1, 8000, 16)), ErrCorruptWAV},
		{"no data", buildWAV(0, fmtChunk(1, 1, 8000, 16)), ErrCorruptWAV},
		{"short fmt", buildWAV(0, wavChunk{id: "fmt ", body: make([]byte, 14)}, data), ErrCorruptWAV},
		{"short extensible fmt", buildWAV(0, wavChunk{id: "fmt ", body: fmtChunk(0xFFFE, 1, 8000, 16).body}, data), ErrCorruptWAV},
		{"chunk past the end", buildWAV(0, wavChunk{id: "LIST", size: 0xFFFFFFF0, body: []byte("ab")}), ErrCorruptWAV},
		{"fmt past the end", buildWAV(0, wavChunk{id: "fmt ", size: 100, body: fmtChunk(1, 1, 8000, 16).body}), ErrCorruptWAV},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := DecodeWAV(tt.wav)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add(EncodeWAV([]int16{1, 2, 3}, 8000))
	f.Add(buildWAV(0, fmtChunk(1, 2, 44100, 8), wavChunk{id: "data", body: []byte{1, 2, 3, 4, 5}}))
	f.Add(buildWAV(0, extensibleFmt(3, 3, 22050, 32), wavChunk{id: "data", size: 0xFFFFFFFF, body: make([]byte, 24)}))
	f.Add(buildWAV(0, wavChunk{id: "LIST", body: []byte("x")}, fmtChunk(1, 1, 8000, 24), wavChunk{id: "data", body: make([]byte, 7)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, rate, err := DecodeWAV(b)
		if err != nil {
			require.Nil(t, pcm)
			return
		}
		require.GreaterOrEqual(t, rate, MinSampleRate)
		require.LessOrEqual(t, rate, MaxSampleRate)
		// Every output sample comes from at least one input byte.
		require.LessOrEqual(t, len(pcm), len(b))
		// Re-encoding mono 16-bit output and decoding it again is lossless.
		again, rate2, err := DecodeWAV(EncodeWAV(pcm, rate))
		require.NoError(t, err)
		require.Equal(t, rate, rate2)
		require.Equal(t, len(pcm), len(again))
	})
}
