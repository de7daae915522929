package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run the real ffmpeg (Debian package ffmpeg), which also makes their inputs.

// ffmpegMake runs ffmpeg with args and an input on stdin (or none), writing a file it returns.
func ffmpegMake(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.CommandContext(t.Context(), "ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error"},
		args...), "-y", out)...)
	cmd.Stdin = bytes.NewReader(stdin)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

func TestFFmpegDecode(t *testing.T) {
	t.Parallel()
	wav := EncodeWAV(tone(44100, 1000, 2, 8000), 44100)
	for _, tt := range []struct {
		name, format string
		args         []string
	}{
		{"ogg-vorbis", AudioOgg, []string{"-c:a", "libvorbis", "-f", "ogg"}},
		{"ogg-opus", AudioOgg, []string{"-c:a", "libopus", "-f", "ogg"}},
		{"flac", AudioFLAC, []string{"-c:a", "flac", "-f", "flac"}},
		{"m4a, index at the end", AudioMP4, []string{"-c:a", "aac", "-f", "mp4"}},
		{"webm", AudioWebM, []string{"-c:a", "libopus", "-f", "webm"}},
		{"adts", AudioAAC, []string{"-c:a", "aac", "-f", "adts"}},
		{"aiff", AudioAIFF, []string{"-f", "aiff"}},
		{"mp2", AudioMP2, []string{"-c:a", "mp2", "-f", "mp2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := ffmpegMake(t, wav, append([]string{"-i", "pipe:0"}, tt.args...)...)
			require.Equal(t, tt.format, DetectAudio(in))
			pcm, err := (&FFmpeg{}).Decode(t.Context(), in)
			require.NoError(t, err)
			assert.InDelta(t, 2.0, float64(len(pcm))/8000, 0.1)
			assert.InDelta(t, 0, db(amplitude(seg(pcm, 8000, 0.3, 1.7), 8000, 1000), 8000), 1)
		})
	}
}

func TestFFmpegMissing(t *testing.T) {
	t.Parallel()
	f := &FFmpeg{LookPath: failingLookPath}
	assert.False(t, f.Available())
	_, err := f.Decode(t.Context(), []byte("OggS"))
	require.ErrorIs(t, err, ErrNoFFmpeg)
	require.ErrorIs(t, err, exec.ErrNotFound)

	f = &FFmpeg{Path: filepath.Join(t.TempDir(), "ffmpeg")}
	assert.False(t, f.Available())
	_, err = f.Decode(t.Context(), []byte("OggS"))
	require.ErrorIs(t, err, ErrNoFFmpeg)

	assert.True(t, (&FFmpeg{}).Available(), "the tests need ffmpeg installed")
}

func TestFFmpegFailures(t *testing.T) {
	t.Parallel()
	f := &FFmpeg{}
	_, err := f.Decode(t.Context(), []byte("this is no audio file at all"))
	require.ErrorIs(t, err, ErrFFmpeg)
	assert.Contains(t, err.Error(), "unrecognised audio")

	video := ffmpegMake(t, nil, "-f", "lavfi", "-i", "color=c=black:s=16x16:d=0.2", "-f", "mp4")
	_, err = f.Decode(t.Context(), video)
	require.ErrorIs(t, err, ErrFFmpeg, "a file without audio")
	assert.Contains(t, err.Error(), "matches no streams")

	long := ffmpegMake(t, EncodeWAV(tone(8000, 440, 3, 1000), 8000), "-i", "pipe:0", "-c:a", "flac", "-f", "flac")
	_, err = (&FFmpeg{MaxDuration: time.Second}).Decode(t.Context(), long)
	require.ErrorIs(t, err, ErrAudioTooLong)
	pcm, err := (&FFmpeg{MaxDuration: 3 * time.Second}).Decode(t.Context(), long)
	require.NoError(t, err, "exactly at the cap")
	assert.Len(t, pcm, 3*8000)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = f.Decode(ctx, long)
	require.ErrorIs(t, err, context.Canceled)
}

// TestDecodeWAVMatchesFFmpeg decodes WAV files ffmpeg wrote in every sample format it has.
func TestDecodeWAVMatchesFFmpeg(t *testing.T) {
	t.Parallel()
	src := speechLike(16000, 0.5, 8)
	wav := EncodeWAV(src, 16000)
	for _, tt := range []struct {
		codec    string
		channels string
		tol      float64
	}{
		{"pcm_u8", "1", 256}, {"pcm_s16le", "2", 0}, {"pcm_s24le", "1", 0}, {"pcm_s32le", "2", 0},
		{"pcm_f32le", "1", 0}, {"pcm_f64le", "1", 0}, {"pcm_s16le", "6", 1}, {"pcm_s24le", "4", 1},
	} {
		t.Run(tt.codec+"x"+tt.channels, func(t *testing.T) {
			t.Parallel()
			in := ffmpegMake(t, wav, "-i", "pipe:0", "-af", "pan="+panAll(tt.channels), "-c:a", tt.codec, "-f", "wav")
			pcm, rate, err := DecodeWAV(in)
			require.NoError(t, err)
			require.Equal(t, 16000, rate)
			require.Len(t, pcm, len(src))
			var worst float64
			for i := range src {
				worst = max(worst, math.Abs(float64(pcm[i])-float64(src[i])))
			}
			assert.LessOrEqual(t, worst, tt.tol)
		})
	}
}

// panAll is an ffmpeg pan filter copying the mono input to n channels.
func panAll(n string) string {
	layouts := map[string]string{"1": "mono|c0=c0", "2": "stereo|c0=c0|c1=c0", "4": "4.0|c0=c0|c1=c0|c2=c0|c3=c0",
		"6": "5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"}
	return layouts[n]
}

// TestDecodeMP3MatchesFFmpeg compares go-mp3 (through DecodeMP3) with ffmpeg's MP3 decoder.
func TestDecodeMP3MatchesFFmpeg(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"mp3_tones_44k_stereo.mp3", "mp3_reservoir_44k_stereo.mp3", "mp3_tone_16k_mono.mp3"} {
		mp3 := readFixture(t, name)
		got, rate, err := DecodeMP3(mp3)
		require.NoError(t, err)
		raw := ffmpegMake(t, mp3, "-i", "pipe:0", "-ac", "1", "-f", "s16le")
		want := make([]int16, len(raw)/2)
		for i := range want {
			want[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		require.InDelta(t, len(want), len(got), float64(rate)/100, name)
		n := min(len(want), len(got))
		var num, da, db float64
		for i := range n {
			num += float64(got[i]) * float64(want[i])
			da += float64(got[i]) * float64(got[i])
			db += float64(want[i]) * float64(want[i])
		}
		assert.Greater(t, num/math.Sqrt(da*db), 0.999, name)
	}
}
