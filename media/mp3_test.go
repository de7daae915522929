package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

// seg returns x[from s : to s] at rate.
func seg(x []int16, rate int, from, to float64) []int16 {
	return x[int(from*float64(rate)):min(len(x), int(to*float64(rate)))]
}

func TestDecodeMP3Fixtures(t *testing.T) {
	t.Parallel()
	// mp3_gen.go: 1 kHz then 2.5 kHz sines at peak 8000 in both channels. lame delays the signal
	// by ~1100 samples (encoder delay + decoder delay), hence windows well inside each second.
	pcm, rate, err := DecodeMP3(readFixture(t, "mp3_tones_44k_stereo.mp3"))
	require.NoError(t, err)
	assert.Equal(t, 44100, rate)
	assert.InDelta(t, 2.0, float64(len(pcm))/44100, 0.1)
	first, second := seg(pcm, rate, 0.2, 0.9), seg(pcm, rate, 1.2, 1.9)
	assert.InDelta(t, 0, db(amplitude(first, rate, 1000), 8000), 0.5)
	assert.InDelta(t, 0, db(amplitude(second, rate, 2500), 8000), 0.5)
	assert.Less(t, amplitude(first, rate, 2500), 80.0)
	assert.Less(t, amplitude(second, rate, 1000), 80.0)

	pcm, rate, err = DecodeMP3(readFixture(t, "mp3_tone_16k_mono.mp3"))
	require.NoError(t, err)
	assert.Equal(t, 16000, rate, "MPEG-2")
	assert.InDelta(t, 0, db(amplitude(seg(pcm, rate, 0.2, 0.9), rate, 440), 8000), 0.5)
}

func TestMP3To8k(t *testing.T) {
	t.Parallel()
	pcm, err := mp3To8k(t.Context(), readFixture(t, "mp3_tones_44k_stereo.mp3"), time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 2.0, float64(len(pcm))/8000, 0.1)
	assert.InDelta(t, 0, db(amplitude(seg(pcm, 8000, 0.2, 0.9), 8000, 1000), 8000), 0.5)
	assert.InDelta(t, 0, db(amplitude(seg(pcm, 8000, 1.2, 1.9), 8000, 2500), 8000), 0.5)
}

func TestDecodeMP3Unsupported(t *testing.T) {
	t.Parallel()
	_, _, err := DecodeMP3(readFixture(t, "mp3_tone_8k_mono.mp3"))
	require.ErrorIs(t, err, ErrUnsupportedMP3)
	assert.Contains(t, err.Error(), "MPEG-2.5")

	// A Layer II header (MPEG-1, 192 kbit/s, 48 kHz: 576-byte frames), two frames of it.
	l2 := make([]byte, 2*576)
	copy(l2, "\xff\xfd\xa4\x00")
	copy(l2[576:], "\xff\xfd\xa4\x00")
	_, _, err = DecodeMP3(l2)
	require.ErrorIs(t, err, ErrUnsupportedMP3)
	assert.Equal(t, AudioMP2, DetectAudio(l2))
}

func TestDecodeMP3Errors(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"empty":           nil,
		"text":            []byte("hello, this is not audio at all"),
		"WAV":             EncodeWAV(tone(8000, 440, 0.1, 1000), 8000),
		"lone sync word":  []byte("\xff\xfb\x90\x00abc"),
		"ID3 tag only":    append([]byte("ID3\x04\x00\x00\x00\x00\x00\x0a"), make([]byte, 10)...),
		"free format":     bytes.Repeat([]byte("\xff\xfb\x00\x00"), 100),
		"reserved rate":   bytes.Repeat([]byte("\xff\xfb\x9c\x00"), 100),
		"AMR":             amrOf(AMRMode122, AMRMode122),
		"reserved layer":  bytes.Repeat([]byte("\xff\xf9\x90\x00"), 100),
		"reserved MPEG-x": bytes.Repeat([]byte("\xff\xeb\x90\x00"), 100),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := DecodeMP3(b)
			require.ErrorIs(t, err, ErrNotMP3)
		})
	}
	// Frames whose content is garbage: the header and the next sync check pass, decoding fails or
	// yields noise, but never panics.
	junk := bytes.Repeat(append([]byte("\xff\xfb\x90\x00"), bytes.Repeat([]byte{0x5a}, 413)...), 20)
	_, _, err := DecodeMP3(junk)
	if err != nil {
		require.ErrorIs(t, err, ErrCorruptMP3)
	}
}

func TestDecodeMP3SkipsID3v2(t *testing.T) {
	t.Parallel()
	mp3 := readFixture(t, "mp3_tone_16k_mono.mp3")
	want, _, err := DecodeMP3(mp3)
	require.NoError(t, err)
	// A 1000-byte tag full of sync-like bytes, with the footer flag.
	body := bytes.Repeat([]byte("\xff\xfb\x90\x00"), 250)
	tag := []byte{'I', 'D', '3', 4, 0, 0x10, 0, 0, byte(1000 >> 7), byte(1000 & 0x7f)}
	tagged := append(append(append(tag, body...), "3DI\x04\x00\x10\x00\x00\x07\x68"...), mp3...)
	got, _, err := DecodeMP3(tagged)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, AudioMP3, DetectAudio(tagged))

	// A tag claiming 256 MB is not believed (and not allocated): the frames after it still decode.
	huge := append([]byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f"), mp3...)
	got, _, err = DecodeMP3(huge)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestDecodeMP3Limits(t *testing.T) {
	t.Parallel()
	mp3 := readFixture(t, "mp3_tones_44k_stereo.mp3")
	_, _, err := decodeMP3(t.Context(), mp3, time.Second, 0)
	require.ErrorIs(t, err, ErrAudioTooLong)
	long := bytes.Repeat(mp3, 10) // long enough to be decoded in chunks
	_, _, err = decodeMP3(t.Context(), long, 10*time.Second, VoiceSampleRate)
	require.ErrorIs(t, err, ErrAudioTooLong)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = mp3To8k(ctx, mp3, time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	_, err = mp3To8k(ctx, long, time.Minute)
	require.ErrorIs(t, err, context.Canceled)

	// A truncated stream decodes what is there.
	pcm, _, err := DecodeMP3(mp3[:len(mp3)/2])
	require.NoError(t, err)
	assert.InDelta(t, 1.0, float64(len(pcm))/44100, 0.1)
}

// mainDataBegin reads main_data_begin from the MPEG-1 frame at b[off:].
func mainDataBegin(b []byte, off int) int {
	p := off + 4
	if b[off+1]&1 == 0 {
		p += 2
	}
	return int(binary.BigEndian.Uint16(b[p:]) >> 7)
}

// TestDecodeMP3ChunksExact: chunked decoding (with primer frames rebuilding the bit reservoir) is
// bit-identical to decoding the stream in one go, at the native rate and resampled to 8 kHz.
func TestDecodeMP3ChunksExact(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"mp3_reservoir_44k_stereo.mp3", "mp3_tones_44k_stereo.mp3"} {
		mp3 := readFixture(t, name)
		first, hdr, err := findMPEG(mp3)
		require.NoError(t, err)
		off := indexMPEG(mp3, first, hdr)
		require.Equal(t, len(mp3), off[len(off)-1], "%s: every byte is in a frame", name)
		if name == "mp3_reservoir_44k_stereo.mp3" {
			back := 0
			for _, o := range off[:len(off)-1] {
				if mainDataBegin(mp3, o) > 0 {
					back++
				}
			}
			require.Greater(t, back, len(off)/3, "the fixture must use the bit reservoir")
		}
		for _, toRate := range []int{0, 8000} {
			var r *Resampler
			if toRate != 0 {
				r, err = NewResampler(hdr.rate, toRate)
				require.NoError(t, err)
			}
			var want []int16
			require.NoError(t, pumpMP3(t.Context(), bytes.NewReader(mp3[first:]), hdr.rate, 0, 1<<40, func(m []int16) error {
				if r != nil {
					want = r.Write(want, m)
				} else {
					want = append(want, m...)
				}
				return nil
			}))
			if r != nil {
				want = r.Flush(want)
			}
			// Chunk layouts: two workers and tiny chunks (many seams), an odd split, few chunks.
			for _, layout := range [][2]int{{2, 4}, {3, 7}, {5, 20}} {
				t.Run(fmt.Sprintf("%s/%d/%d/%d", name, toRate, layout[0], layout[1]), func(t *testing.T) {
					got, ok, err := decodeMP3Chunks(t.Context(), mp3, first, hdr, 1<<40, r, layout[0], layout[1])
					require.NoError(t, err)
					require.True(t, ok)
					requireSamePCM(t, want, got)
				})
			}
		}
	}
}

// requireSamePCM compares PCM sample by sample, reporting the first difference (testify's diff of
// long slices takes minutes).
func requireSamePCM(t *testing.T, want, got []int16) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Fatalf("sample %d: got %d, want %d", i, got[i], want[i])
		}
	}
	require.Equal(t, len(want), len(got), "length")
}

func TestDecodeMP3ChunksDeclines(t *testing.T) {
	t.Parallel()
	mp3 := readFixture(t, "mp3_tones_44k_stereo.mp3")
	first, hdr, err := findMPEG(mp3)
	require.NoError(t, err)
	_, ok, _ := decodeMP3Chunks(t.Context(), mp3, first, hdr, 1<<40, nil, 1, 4)
	assert.False(t, ok, "one worker")
	_, ok, _ = decodeMP3Chunks(t.Context(), mp3, first, hdr, 1<<40, nil, 4, 1000)
	assert.False(t, ok, "too short")
	m2 := readFixture(t, "mp3_tone_16k_mono.mp3")
	first, hdr, err = findMPEG(m2)
	require.NoError(t, err)
	_, ok, _ = decodeMP3Chunks(t.Context(), m2, first, hdr, 1<<40, nil, 4, 2)
	assert.False(t, ok, "MPEG-2 is decoded in one go")
}

func TestParseMPEGHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		h    uint32
		want mpegHeader
	}{
		{0xFFFB9000, mpegHeader{version: 1, layer: 3, rate: 44100, size: 417}}, // 128 kbit/s
		{0xFFFB9200, mpegHeader{version: 1, layer: 3, rate: 44100, size: 418}}, // padded
		{0xFFFBE400, mpegHeader{version: 1, layer: 3, rate: 48000, size: 960}}, // 320 kbit/s
		{0xFFF34800, mpegHeader{version: 2, layer: 3, rate: 16000, size: 144}}, // 32 kbit/s
		{0xFFE32800, mpegHeader{version: 25, layer: 3, rate: 8000, size: 144}}, // 16 kbit/s
		{0xFFFDA400, mpegHeader{version: 1, layer: 2, rate: 48000, size: 576}}, // 192 kbit/s
		{0xFFFFE400, mpegHeader{version: 1, layer: 1, rate: 48000, size: 448}}, // 448 kbit/s, 4-byte slots
	}
	for _, tt := range tests {
		got, ok := parseMPEGHeader(tt.h)
		require.True(t, ok, "%08x", tt.h)
		assert.Equal(t, tt.want, got, "%08x", tt.h)
	}
	for _, h := range []uint32{0, 0xFFFB0000, 0xFFFBF000, 0xFFFB9C00, 0xFFF99000, 0xFFEB9000, 0xFFFB9002, 0x7FFB9000} {
		_, ok := parseMPEGHeader(h)
		assert.False(t, ok, "%08x", h)
	}
}

func FuzzDecodeMP3(f *testing.F) {
	// Short seeds (two or three frames): the fuzzer minimises every new input it keeps, and long ones
	// make that crawl.
	f.Add(readFixture(f, "mp3_tone_16k_mono.mp3")[:300])
	f.Add(readFixture(f, "mp3_reservoir_44k_stereo.mp3")[:630])
	f.Add([]byte("ID3\x03\x00\x00\x00\x00\x00\x05abcde\xff\xfb\x90\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, rate, err := DecodeMP3(b)
		if err != nil {
			require.Nil(t, pcm)
			return
		}
		require.Contains(t, []int{16000, 22050, 24000, 32000, 44100, 48000}, rate)
	})
}
