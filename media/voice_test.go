package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetectAudio(t *testing.T) {
	t.Parallel()
	mp3 := readFixture(t, "mp3_tone_16k_mono.mp3")
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"AMR-NB", []byte("#!AMR\n\x3c"), AudioAMR},
		{"AMR-NB header only", []byte("#!AMR\n"), AudioAMR},
		{"AMR-WB", []byte("#!AMR-WB\n"), AudioAMRWB},
		{"AMR-WB multichannel", []byte("#!AMR-WB_MC1.0\n\x00\x00\x00\x01"), AudioAMRWB},
		{"AMR multichannel", []byte("#!AMR_MC1.0\n\x00\x00\x00\x01"), AudioAMRMC},
		{"SILK", []byte("#!SILK_V3\x0c\x00"), AudioSILK},
		{"SILK with WeChat's leading byte", []byte("\x02#!SILK_V3\x0c\x00"), AudioSILK},
		{"WAV", EncodeWAV([]int16{1}, 8000), AudioWAV},
		{"RF64", []byte("RF64\xff\xff\xff\xffWAVEds64"), AudioWAV},
		{"RIFF AVI", []byte("RIFF\x00\x00\x00\x00AVI LIST"), AudioUnknown},
		{"MP3", mp3, AudioMP3},
		{"MP3 after ID3v2", append([]byte("ID3\x03\x00\x00\x00\x00\x00\x02ab"), mp3...), AudioMP3},
		{"MPEG-2.5 MP3", readFixture(t, "mp3_tone_8k_mono.mp3"), AudioMP3},
		{"one MP3 frame", mp3[:144], AudioMP3},
		{"sync word without a second frame", append(append([]byte(nil), mp3[:144]...), "junkjunk"...), AudioUnknown},
		{"ADTS AAC", []byte("\xff\xf1\x50\x80\x02\x1f\xfc"), AudioAAC},
		{"Ogg", []byte("OggS\x00\x02"), AudioOgg},
		{"FLAC", []byte("fLaC\x00\x00\x00\x22"), AudioFLAC},
		{"M4A", []byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), AudioMP4},
		{"3GP", []byte("\x00\x00\x00\x18ftyp3gp4"), AudioMP4},
		{"WebM", []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81"), AudioWebM},
		{"AIFF", []byte("FORM\x00\x00\x00\x00AIFFCOMM"), AudioAIFF},
		{"AIFF-C", []byte("FORM\x00\x00\x00\x00AIFCFVER"), AudioAIFF},
		{"CAF", []byte("caff\x00\x01\x00\x00"), AudioCAF},
		{"WMA", []byte(asfHeaderGUID + "\xa6\xd9\x00\xaa\x00\x62\xce\x6c"), AudioASF},
		{"empty", nil, AudioUnknown},
		{"one byte", []byte{0xff}, AudioUnknown},
		{"PNG", []byte("\x89PNG\r\n\x1a\n"), AudioUnknown},
		{"text", []byte("hello"), AudioUnknown},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, DetectAudio(tt.b), tt.name)
	}
}

// failingLookPath is an ffmpeg lookup on a machine without ffmpeg.
func failingLookPath(string) (string, error) { return "", exec.ErrNotFound }

// encoderFunc adapts a function to AMREncoder; tests use it for encoders that misbehave.
type encoderFunc func(ctx context.Context, pcm []int16) ([]byte, error)

func (f encoderFunc) EncodeAMR(ctx context.Context, pcm []int16) ([]byte, error) { return f(ctx, pcm) }

// mustNotEncode fails the test if it is ever asked to encode.
func mustNotEncode(t *testing.T) AMREncoder {
	return encoderFunc(func(context.Context, []int16) ([]byte, error) {
		t.Error("the encoder must not be called")
		return nil, errors.New("unexpected call")
	})
}

func TestToVoiceAMRInput(t *testing.T) {
	t.Parallel()
	in := amrOf(repeatType(AMRMode122, 7500)...) // 150 s
	pieces, err := ToVoice(t.Context(), in, nil)
	require.NoError(t, err)
	assert.Equal(t, []int{3000, 3000, 1500}, checkPieces(t, in, pieces, MaxVoiceDuration, MaxVoiceBytes))
	for _, p := range pieces {
		require.NoError(t, CheckVoice(p))
	}
	// An encoder, if given, is not used for AMR-NB input.
	again, err := ToVoice(t.Context(), in, mustNotEncode(t))
	require.NoError(t, err)
	assert.Equal(t, pieces, again)
	// The pieces are copies: changing them leaves the input alone.
	pieces[0][len(AMRMagic)] ^= 0xff
	assert.Equal(t, amrOf(repeatType(AMRMode122, 7500)...), in)
}

func TestToVoiceErrors(t *testing.T) {
	t.Parallel()
	wav := EncodeWAV(tone(16000, 440, 1, 1000), 16000)
	noFF := &FFmpeg{LookPath: failingLookPath}
	tests := []struct {
		name string
		c    *VoiceConverter
		in   []byte
		want error
	}{
		{"AMR without frames", &VoiceConverter{}, []byte(AMRMagic), ErrNoAudio},
		{"corrupt AMR", &VoiceConverter{}, []byte(AMRMagic + "\x3c\x00"), ErrCorruptAMR},
		{"reserved AMR frame", &VoiceConverter{}, []byte(AMRMagic + "\x64"), ErrCorruptAMR},
		{"AMR over MaxInput", &VoiceConverter{MaxInput: time.Second}, amrOf(repeatType(AMRNoData, 51)...), ErrAudioTooLong},
		{"AMR over MaxAudioInput", &VoiceConverter{}, append([]byte(AMRMagic), bytes.Repeat([]byte{0x7c}, 90001)...), ErrAudioTooLong},
		{"AMR split limits", &VoiceConverter{Splitter: AMRSplitter{MaxBytes: 10}}, amrOf(AMRMode122), ErrSplitLimit},
		{"SILK", &VoiceConverter{Encoder: mustNotEncode(t)}, []byte("\x02#!SILK_V3\x0c\x00abc"), ErrUnsupportedAudio},
		{"WAV without encoder", &VoiceConverter{}, wav, ErrNoEncoder},
		{"MP3 without encoder", &VoiceConverter{}, readFixture(t, "mp3_tone_16k_mono.mp3"), ErrNoEncoder},
		{"AMR-WB without encoder", &VoiceConverter{}, []byte("#!AMR-WB\n\x04"), ErrNoEncoder},
		{"unknown without encoder", &VoiceConverter{}, []byte("????"), ErrNoEncoder},
		{"unknown without ffmpeg", &VoiceConverter{Encoder: mustNotEncode(t), FFmpeg: noFF}, []byte("OggS\x00\x02junk"), ErrNoFFmpeg},
		{"AMR-WB without ffmpeg", &VoiceConverter{Encoder: mustNotEncode(t), FFmpeg: noFF}, []byte("#!AMR-WB\n\x04"), ErrNoFFmpeg},
		{"MPEG-2.5 without ffmpeg", &VoiceConverter{Encoder: mustNotEncode(t), FFmpeg: noFF}, readFixture(t, "mp3_tone_8k_mono.mp3"), ErrUnsupportedMP3},
		{"empty WAV", &VoiceConverter{Encoder: mustNotEncode(t)}, EncodeWAV(nil, 8000), ErrNoAudio},
		{"corrupt WAV", &VoiceConverter{Encoder: mustNotEncode(t)}, []byte("RIFF\x00\x00\x00\x00WAVEdata"), ErrCorruptWAV},
		{"WAV over MaxInput", &VoiceConverter{Encoder: mustNotEncode(t), MaxInput: 900 * time.Millisecond}, wav, ErrAudioTooLong},
		{"MP3 over MaxInput", &VoiceConverter{Encoder: mustNotEncode(t), MaxInput: 500 * time.Millisecond},
			readFixture(t, "mp3_tone_16k_mono.mp3"), ErrAudioTooLong},
		{"encoder fails", &VoiceConverter{Encoder: encoderFunc(func(context.Context, []int16) ([]byte, error) {
			return nil, errTestEncoder
		})}, wav, errTestEncoder},
		{"encoder returns junk", &VoiceConverter{Encoder: encoderFunc(func(context.Context, []int16) ([]byte, error) {
			return []byte("not amr"), nil
		})}, wav, ErrNotAMRNB},
		{"encoder returns corrupt AMR", &VoiceConverter{Encoder: encoderFunc(func(context.Context, []int16) ([]byte, error) {
			return []byte(AMRMagic + "\x3c"), nil
		})}, wav, ErrCorruptAMR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pieces, err := tt.c.Convert(t.Context(), tt.in)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, pieces)
		})
	}
}

var errTestEncoder = errors.New("test encoder failure")

// TestToVoiceNoFFmpegOnPath runs the real lookup with a PATH that has no ffmpeg.
func TestToVoiceNoFFmpegOnPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := ToVoice(t.Context(), []byte("OggS\x00\x02junk"), mustNotEncode(t))
	require.ErrorIs(t, err, ErrNoFFmpeg)
	require.ErrorIs(t, err, exec.ErrNotFound)
	assert.Contains(t, err.Error(), "ogg")
	assert.False(t, (&FFmpeg{}).Available())
}

// TestToVoiceReSplitsOversizedEncoderOutput: pieces are planned assuming at most 32 bytes a frame and
// one frame per 160 samples; an encoder that returns more is split again to stay within limits.
func TestToVoiceReSplitsOversizedEncoderOutput(t *testing.T) {
	t.Parallel()
	var calls int
	double := encoderFunc(func(_ context.Context, pcm []int16) ([]byte, error) {
		calls++
		frames := 2 * ((len(pcm) + 159) / 160) // twice the frames it should make
		return amrOf(repeatType(AMRMode122, frames)...), nil
	})
	c := &VoiceConverter{Encoder: double, Splitter: AMRSplitter{MaxDuration: 10 * time.Second}}
	pieces, err := c.Convert(t.Context(), EncodeWAV(make([]int16, 8000*25), 8000))
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
	var total time.Duration
	for _, p := range pieces {
		d, err := AMRDuration(p)
		require.NoError(t, err)
		assert.LessOrEqual(t, d, 10*time.Second)
		total += d
	}
	assert.Equal(t, 50*time.Second, total)
}

func TestToVoiceCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ToVoice(ctx, EncodeWAV(tone(8000, 440, 1, 1000), 8000), mustNotEncode(t))
	require.ErrorIs(t, err, context.Canceled)
}

// FuzzToVoice feeds arbitrary bytes through detection and the pure-Go decoders with an encoder that
// emits one NO_DATA frame per 160 samples. ffmpeg is kept out (no processes while fuzzing).
func FuzzToVoice(f *testing.F) {
	f.Add(amrOf(AMRMode122, AMRSID, AMRNoData))
	f.Add(EncodeWAV(tone(11025, 440, 0.05, 1000), 11025))
	f.Add(readFixture(f, "mp3_tone_16k_mono.mp3")[:300])
	f.Add([]byte("#!AMR-WB\n\x04"))
	f.Add([]byte("\x02#!SILK_V3"))
	enc := encoderFunc(func(_ context.Context, pcm []int16) ([]byte, error) {
		return append([]byte(AMRMagic), bytes.Repeat([]byte{0x7c}, (len(pcm)+159)/160)...), nil
	})
	c := &VoiceConverter{Encoder: enc, FFmpeg: &FFmpeg{LookPath: failingLookPath}, MaxInput: 10 * time.Minute,
		Splitter: AMRSplitter{MaxDuration: 5 * time.Second}}
	f.Fuzz(func(t *testing.T, b []byte) {
		pieces, err := c.Convert(t.Context(), b)
		if err != nil {
			require.Nil(t, pieces)
			return
		}
		require.NotEmpty(t, pieces)
		for _, p := range pieces {
			d, err := AMRDuration(p)
			require.NoError(t, err)
			require.LessOrEqual(t, d, 5*time.Second)
			require.Positive(t, d)
			require.NoError(t, CheckVoice(p))
		}
	})
}

// TestBuildsWithoutCgo: package media is pure Go (the cgo codec lives in media/amrnb), so hosts that
// cannot use cgo can still import it.
func TestBuildsWithoutCgo(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be on PATH")
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}
