package amrnb_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxkf/wxkf/media"
	"github.com/wxkf/wxkf/media/amrnb"
)

// End-to-end tests of media.ToVoice with the real encoder and decoder.

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	require.NoError(t, err)
	return b
}

// stereoWAV interleaves l and r into a 16-bit stereo WAV.
func stereoWAV(l, r []int16, rate int) []byte {
	w := media.EncodeWAV(nil, rate)
	binary.LittleEndian.PutUint16(w[22:], 2)
	binary.LittleEndian.PutUint32(w[28:], uint32(rate*4))
	binary.LittleEndian.PutUint16(w[32:], 4)
	for i := range l {
		w = binary.LittleEndian.AppendUint16(w, uint16(l[i]))
		w = binary.LittleEndian.AppendUint16(w, uint16(r[i]))
	}
	binary.LittleEndian.PutUint32(w[40:], uint32(len(l)*4))
	binary.LittleEndian.PutUint32(w[4:], uint32(len(w)-8))
	return w
}

// checkVoicePieces asserts every piece passes WeCom's voice rules and returns their durations.
func checkVoicePieces(t *testing.T, pieces [][]byte) []time.Duration {
	t.Helper()
	var ds []time.Duration
	for i, p := range pieces {
		require.NoError(t, media.CheckVoice(p), "piece %d", i)
		d, err := media.AMRDuration(p)
		require.NoError(t, err)
		ds = append(ds, d)
	}
	return ds
}

func newEncoder(t testing.TB, opts ...amrnb.EncoderOption) *amrnb.Encoder {
	enc, err := amrnb.NewEncoder(opts...)
	require.NoError(t, err)
	return enc
}

func TestToVoiceMP3(t *testing.T) {
	t.Parallel()
	pieces, err := media.ToVoice(t.Context(), fixture(t, "mp3_tones_44k_stereo.mp3"), newEncoder(t))
	require.NoError(t, err)
	require.Len(t, pieces, 1)
	ds := checkVoicePieces(t, pieces)
	assert.InDelta(t, 2.0, ds[0].Seconds(), 0.1)
	pcm, err := amrnb.NewDecoder().DecodeAMR(t.Context(), pieces[0])
	require.NoError(t, err)
	// 1 kHz then 2.5 kHz at peak 8000 (mp3_gen.go); AMR-NB keeps both within a couple of dB.
	a1 := amplitude(pcm[1600:7200], 8000, 1000)
	a2 := amplitude(pcm[9600:15200], 8000, 2500)
	assert.InDelta(t, 0, 20*math.Log10(a1/8000), 3, "1 kHz amplitude %.0f", a1)
	assert.InDelta(t, 0, 20*math.Log10(a2/8000), 3, "2.5 kHz amplitude %.0f", a2)
	assert.Less(t, amplitude(pcm[1600:7200], 8000, 2500), a1/10)
}

// TestToVoiceLongWAVCutsInPauses: 150 s of stereo speech-like audio becomes three pieces
// of at most 60 s, cut inside the 300 ms pauses that come every 1.5 s, and every piece decodes on its
// own to its stretch of the input (each piece is encoded from a fresh state, as it is played).
func TestToVoiceLongWAVCutsInPauses(t *testing.T) {
	t.Parallel()
	const rate = 8000 // resampling is covered elsewhere; this is about the cuts
	voice := speechLike(rate, 150, 11)
	wav := stereoWAV(voice, voice, rate)
	pieces, err := media.ToVoice(t.Context(), wav, newEncoder(t))
	require.NoError(t, err)
	require.Len(t, pieces, 3)
	ds := checkVoicePieces(t, pieces)
	total := ds[0] + ds[1] + ds[2]
	assert.InDelta(t, 150, total.Seconds(), 0.02)

	ref := voice
	dec := amrnb.NewDecoder()
	var at time.Duration
	for i, p := range pieces {
		if i > 0 {
			// The cut sits in a pause: 1.2–1.5 s into each 1.5 s sentence (±60 ms of context).
			phase := math.Mod(at.Seconds(), 1.5)
			assert.True(t, phase >= 1.26 && phase <= 1.44, "cut %d at %v is not in a pause (phase %.2f s)", i, at, phase)
			assert.GreaterOrEqual(t, ds[i-1], 55*time.Second, "cut %d is within the last 5 s", i)
		}
		pcm, err := dec.DecodeAMR(t.Context(), p)
		require.NoError(t, err)
		// The first seconds matter most: the piece was encoded from a fresh state and is decoded
		// from one.
		from := int(at.Seconds() * 8000)
		n := min(len(pcm), 5*8000)
		c, lag := bestCorrelation(ref[from:from+n], pcm[:n], codecDelay)
		assert.Greater(t, c, 0.85, "piece %d correlation", i)
		assert.InDelta(t, 40, lag, 8, "piece %d lag", i)
		at += ds[i]
	}
}

// TestToVoiceAMRIsNotReencoded: AMR-NB input is only split; the frames come out byte for byte and no
// encoder is needed. With DTX the cuts land on SID/NO_DATA frames.
func TestToVoiceAMRIsNotReencoded(t *testing.T) {
	t.Parallel()
	sig := speechLike(8000, 130, 3)
	amr, err := newEncoder(t, amrnb.WithDTX(true)).EncodeAMR(t.Context(), sig)
	require.NoError(t, err)
	pieces, err := media.ToVoice(t.Context(), amr, nil)
	require.NoError(t, err)
	require.Len(t, pieces, 3)
	checkVoicePieces(t, pieces)
	var joined []byte
	for i, p := range pieces {
		joined = append(joined, p[len(media.AMRMagic):]...)
		f, err := media.ParseAMR(p)
		require.NoError(t, err)
		if i < len(pieces)-1 {
			assert.True(t, f.Frames[len(f.Frames)-1].Type.IsQuiet(), "piece %d ends in silence", i)
		}
	}
	assert.Equal(t, amr[len(media.AMRMagic):], joined)
}

// TestSplitterDecoderFindsPauses: without DTX every frame is a 12.2 kbit/s speech frame; with a
// decoder the splitter measures the energy and still cuts in the pauses.
func TestSplitterDecoderFindsPauses(t *testing.T) {
	t.Parallel()
	amr, err := newEncoder(t).EncodeAMR(t.Context(), speechLike(8000, 130, 4))
	require.NoError(t, err)
	blind, err := media.SplitAMR(amr, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{time.Minute, time.Minute, 10 * time.Second}, checkVoicePieces(t, blind),
		"no quiet frame types: hard cuts")

	s := media.AMRSplitter{Decoder: amrnb.NewDecoder()}
	pieces, err := s.Split(t.Context(), amr)
	require.NoError(t, err)
	ds := checkVoicePieces(t, pieces)
	require.Len(t, ds, 3)
	at := ds[0]
	for i := 1; i < len(ds); i++ {
		// The decoded audio lags by 5 ms: the pause is at 1.205–1.505 s of each 1.5 s.
		phase := math.Mod(at.Seconds(), 1.5)
		assert.True(t, phase >= 1.26 && phase <= 1.45, "cut at %v (phase %.2f)", at, phase)
		at += ds[i]
	}
	pieces2, err := (&media.VoiceConverter{Splitter: s}).Convert(t.Context(), amr)
	require.NoError(t, err)
	assert.Equal(t, pieces, pieces2)
}

func TestToVoiceOtherFormatsThroughFFmpeg(t *testing.T) {
	t.Parallel()
	src := tone(48000, 1000, 3, 8000)
	wav := media.EncodeWAV(src, 48000)
	enc := newEncoder(t)
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"ogg-opus", []string{"-c:a", "libopus", "-b:a", "32k", "-f", "ogg"}},
		{"flac", []string{"-c:a", "flac", "-f", "flac"}},
		{"m4a-moov-at-end", []string{"-c:a", "aac", "-b:a", "64k", "-f", "mp4"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := ffmpegEncode(t, wav, tt.args...)
			pieces, err := media.ToVoice(t.Context(), in, enc)
			require.NoError(t, err)
			require.Len(t, pieces, 1)
			ds := checkVoicePieces(t, pieces)
			assert.InDelta(t, 3.0, ds[0].Seconds(), 0.1)
			pcm, err := amrnb.NewDecoder().DecodeAMR(t.Context(), pieces[0])
			require.NoError(t, err)
			a := amplitude(pcm[4000:20000], 8000, 1000)
			assert.InDelta(t, 0, 20*math.Log10(a/8000), 3, "1 kHz amplitude %.0f", a)
		})
	}
}

// ffmpegEncode converts a WAV with ffmpeg into a file written to disk (so MP4 gets its index at the
// end, as it does from most tools) and returns its bytes.
func ffmpegEncode(t *testing.T, wav []byte, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.CommandContext(t.Context(), "ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error",
		"-i", "pipe:0"}, args...), "-y", out)...)
	cmd.Stdin = bytes.NewReader(wav)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

func TestToVoiceMPEG25ThroughFFmpeg(t *testing.T) {
	t.Parallel()
	mp3 := fixture(t, "mp3_tone_8k_mono.mp3")
	pieces, err := media.ToVoice(t.Context(), mp3, newEncoder(t))
	require.NoError(t, err)
	ds := checkVoicePieces(t, pieces)
	assert.InDelta(t, 0.5, ds[0].Seconds(), 0.2)

	noFFmpeg := &media.FFmpeg{LookPath: func(string) (string, error) { return "", exec.ErrNotFound }}
	_, err = (&media.VoiceConverter{Encoder: newEncoder(t), FFmpeg: noFFmpeg}).Convert(t.Context(), mp3)
	require.ErrorIs(t, err, media.ErrUnsupportedMP3)
}

func TestToVoiceLimits(t *testing.T) {
	t.Parallel()
	enc := newEncoder(t)
	wav := media.EncodeWAV(speechLike(16000, 25, 5), 16000)
	c := &media.VoiceConverter{Encoder: enc, Splitter: media.AMRSplitter{MaxDuration: 10 * time.Second}}
	pieces, err := c.Convert(t.Context(), wav)
	require.NoError(t, err)
	ds := checkVoicePieces(t, pieces)
	require.Len(t, ds, 3)
	for _, d := range ds {
		assert.LessOrEqual(t, d, 10*time.Second)
	}

	c = &media.VoiceConverter{Encoder: enc, Splitter: media.AMRSplitter{MaxBytes: 6 + 32*100}}
	pieces, err = c.Convert(t.Context(), wav)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(pieces), 13) // 2 s pieces, cut early where a pause allows
	for _, p := range pieces {
		assert.LessOrEqual(t, len(p), 6+32*100)
	}

	_, err = (&media.VoiceConverter{Encoder: enc, MaxInput: 20 * time.Second}).Convert(t.Context(), wav)
	require.ErrorIs(t, err, media.ErrAudioTooLong)
	_, err = (&media.VoiceConverter{Encoder: enc, MaxInput: 20 * time.Second}).Convert(t.Context(),
		bytes.Repeat(fixture(t, "mp3_tones_44k_stereo.mp3"), 11))
	require.ErrorIs(t, err, media.ErrAudioTooLong)
}

// TestToVoiceLongMP3 runs a 20.4 s MP3, long enough to be decoded in parallel chunks, and cancels a
// run midway (TestMain's goleak check then sees no chunk worker left behind).
func TestToVoiceLongMP3(t *testing.T) {
	t.Parallel()
	mp3 := bytes.Repeat(fixture(t, "mp3_tones_44k_stereo.mp3"), 10)
	pieces, err := media.ToVoice(t.Context(), mp3, newEncoder(t))
	require.NoError(t, err)
	ds := checkVoicePieces(t, pieces)
	require.Len(t, ds, 1)
	assert.InDelta(t, 20.4, ds[0].Seconds(), 0.1)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	_, err = media.ToVoice(ctx, mp3, newEncoder(t))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func BenchmarkToVoiceMP3_70s(b *testing.B) {
	// 35 copies of a 2 s 44.1 kHz stereo 128 kbit/s MP3 (no bit reservoir, so its frames join
	// cleanly): 71.4 s, the size of a long spoken reply from a TTS service.
	mp3 := bytes.Repeat(fixture(b, "mp3_tones_44k_stereo.mp3"), 35)
	const seconds = 35 * 2.04
	enc := newEncoder(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(mp3)))
	cpu0 := cpuTime(b)
	for b.Loop() {
		pieces, err := media.ToVoice(b.Context(), mp3, enc)
		if err != nil || len(pieces) != 2 {
			b.Fatal(len(pieces), err)
		}
	}
	b.ReportMetric(seconds*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
	// On a shared machine wall time says little; audio seconds per CPU second (all threads, GC
	// included) is the cost that does not depend on what else runs.
	b.ReportMetric(seconds*float64(b.N)/(cpuTime(b)-cpu0).Seconds(), "x_realtime/cpu")
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
