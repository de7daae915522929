package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Sentinel errors of the ffmpeg decoder; match with errors.Is.
var (
	// ErrNoFFmpeg reports that ffmpeg, needed for audio formats without a pure-Go decoder, is not
	// installed (not on PATH, or not at FFmpeg.Path).
	ErrNoFFmpeg = errors.New("media: ffmpeg not found; install ffmpeg or send WAV, MP3 or AMR-NB")
	// ErrFFmpeg reports that ffmpeg ran but could not decode the input.
	ErrFFmpeg = errors.New("media: ffmpeg could not decode the audio")
)

// ffmpegStderrMax caps how much of ffmpeg's error output is kept; ffmpegMessageMax how much of it,
// on one line, goes into an error.
const (
	ffmpegStderrMax  = 4 << 10
	ffmpegMessageMax = 512
)

// FFmpeg decodes audio formats that have no pure-Go decoder here (Ogg/Opus, AAC, M4A, FLAC, WebM,
// AMR-WB, …) by running the ffmpeg program, which must be installed separately. The zero value runs
// "ffmpeg" from PATH. It is safe for concurrent use.
type FFmpeg struct {
	// Path is the ffmpeg executable: a file name looked up with LookPath, or a path; "" means "ffmpeg".
	Path string
	// LookPath resolves Path; nil means exec.LookPath (the PATH environment variable).
	LookPath func(file string) (string, error)
	// MaxDuration caps the decoded audio; 0 means MaxAudioInput.
	MaxDuration time.Duration
}

// Available reports whether the ffmpeg executable can be found.
func (f *FFmpeg) Available() bool {
	_, err := f.lookPath()
	return err == nil
}

func (f *FFmpeg) lookPath() (string, error) {
	name := f.Path
	if name == "" {
		name = "ffmpeg"
	}
	look := f.LookPath
	if look == nil {
		look = exec.LookPath
	}
	path, err := look(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoFFmpeg, err)
	}
	return path, nil
}

// Decode decodes any audio ffmpeg understands to 8 kHz mono 16-bit PCM (ffmpeg's own resampler
// filters the band). Errors match ErrNoFFmpeg, ErrFFmpeg or ErrAudioTooLong; ctx ends the process.
func (f *FFmpeg) Decode(ctx context.Context, src []byte) ([]int16, error) {
	maxDur := f.MaxDuration
	if maxDur <= 0 {
		maxDur = MaxAudioInput
	}
	return f.decode(ctx, src, DetectAudio(src), maxDur)
}

// decode runs ffmpeg on src (detected as format) and returns at most maxDur of 8 kHz mono PCM.
func (f *FFmpeg) decode(ctx context.Context, src []byte, format string, maxDur time.Duration) ([]int16, error) {
	path, err := f.lookPath()
	if err != nil {
		return nil, fmt.Errorf("%w (input is %s)", err, formatName(format))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	input := "pipe:0"
	var stdin io.Reader = bytes.NewReader(src)
	if format == AudioMP4 {
		// MP4 keeps its index (moov) wherever the writer put it, often at the end, which ffmpeg
		// cannot reach through a pipe: give it a seekable temporary file.
		tmp, err := os.CreateTemp("", "wxkf-voice-*.mp4")
		if err != nil {
			return nil, fmt.Errorf("media: temporary file for ffmpeg: %w", err)
		}
		defer os.Remove(tmp.Name())
		_, err = tmp.Write(src)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("media: temporary file for ffmpeg: %w", err)
		}
		input, stdin = "file:"+tmp.Name(), nil
	}
	maxBytes := 2 * maxSamples(maxDur, VoiceSampleRate)
	args := []string{"-hide_banner", "-nostats", "-loglevel", "error"}
	if stdin == nil {
		args = append(args, "-nostdin")
	}
	args = append(args, "-i", input,
		"-map", "0:a:0", "-vn", "-sn", "-dn",
		// One sample more than the cap tells "too long" from "exactly at the cap".
		"-t", fmt.Sprintf("%.6f", maxDur.Seconds()+1.0/VoiceSampleRate),
		"-ac", "1", "-ar", fmt.Sprint(VoiceSampleRate), "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1")
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = stdin
	stderr := &cappedBuffer{max: ffmpegStderrMax}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("media: ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoFFmpeg, err)
	}
	out, readErr := io.ReadAll(io.LimitReader(stdout, maxBytes+2))
	if int64(len(out)) > maxBytes {
		cancel()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%w: longer than %v", ErrAudioTooLong, maxDur)
	}
	waitErr := cmd.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if waitErr == nil {
		waitErr = readErr
	}
	if waitErr != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if len(msg) > ffmpegMessageMax {
			msg = msg[:ffmpegMessageMax] + "…"
		}
		return nil, fmt.Errorf("%w (input is %s): %w: %s", ErrFFmpeg, formatName(format), waitErr, msg)
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	return pcm, nil
}

// cappedBuffer keeps the first max bytes written to it and discards the rest.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *cappedBuffer) String() string { return c.buf.String() }
