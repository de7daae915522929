package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// AMREncoder encodes speech to AMR-NB, the only voice format WeCom plays (doc 96484).
// Package media/amrnb implements it over libopencore-amrnb.
type AMREncoder interface {
	// EncodeAMR encodes 8 kHz mono 16-bit PCM into a complete AMR-NB file ("#!AMR\n" and 20 ms
	// frames; a partial last frame is padded with silence).
	EncodeAMR(ctx context.Context, pcm []int16) ([]byte, error)
}

// AMRDecoder decodes AMR-NB, e.g. the voice messages users send (sync_msg msgtype voice, AMR unless
// voice_format=1; §4, §9), for speech recognition. Package media/amrnb implements it
// over libopencore-amrnb.
type AMRDecoder interface {
	// DecodeAMR decodes a complete AMR-NB file to 8 kHz mono 16-bit PCM, 160 samples per frame.
	DecodeAMR(ctx context.Context, amr []byte) ([]int16, error)
}

// MaxAudioInput is the longest audio ToVoice accepts by default (30 pieces of 60 s): the decoded
// length is capped so a small compressed input cannot expand into gigabytes of PCM.
const MaxAudioInput = 30 * time.Minute

// Sentinel errors of voice conversion; match with errors.Is.
var (
	// ErrNoEncoder reports input that needs encoding to AMR-NB while no AMREncoder was given.
	ErrNoEncoder = errors.New("media: no AMR encoder for non-AMR voice input (use media/amrnb)")
	// ErrUnsupportedAudio reports an audio format that cannot be converted.
	ErrUnsupportedAudio = errors.New("media: unsupported audio format")
	// ErrAudioTooLong reports audio longer than the converter's cap (MaxAudioInput by default).
	ErrAudioTooLong = errors.New("media: audio too long")
	// ErrNoAudio reports input that decodes to no audio at all.
	ErrNoAudio = errors.New("media: no audio")
)

// Audio formats reported by DetectAudio.
const (
	AudioAMR      = "amr"    // AMR-NB, single channel ("#!AMR\n")
	AudioAMRWB    = "amr-wb" // AMR-WB ("#!AMR-WB\n", single or multichannel)
	AudioAMRMC    = "amr-mc" // multichannel AMR-NB ("#!AMR_MC1.0\n")
	AudioWAV      = "wav"    // RIFF/RF64 WAVE
	AudioMP3      = "mp3"    // MPEG audio Layer III, optionally after ID3v2 tags
	AudioMP2      = "mp2"    // MPEG audio Layer I or II
	AudioAAC      = "aac"    // AAC in ADTS frames
	AudioOgg      = "ogg"    // Ogg (Opus, Vorbis, …)
	AudioFLAC     = "flac"   // native FLAC
	AudioMP4      = "mp4"    // ISO base media: m4a, mp4, 3gp, mov
	AudioWebM     = "webm"   // Matroska / WebM
	AudioSILK     = "silk"   // WeChat SILK voice ("#!SILK_V3"), sync_msg voice_format=1
	AudioAIFF     = "aiff"   // AIFF / AIFF-C
	AudioCAF      = "caf"    // Apple Core Audio Format
	AudioASF      = "asf"    // ASF (WMA)
	AudioUnknown  = ""       // anything else
	silkMagic     = "#!SILK_V3"
	asfHeaderGUID = "\x30\x26\xB2\x75\x8E\x66\xCF\x11"
)

// DetectAudio names the audio format of b from its leading bytes: one of the Audio* constants,
// AudioUnknown ("") when it recognises nothing. It does not validate the rest of the file.
func DetectAudio(b []byte) string {
	has := func(off int, s string) bool { return len(b) >= off+len(s) && string(b[off:off+len(s)]) == s }
	switch {
	case has(0, AMRMagic):
		return AudioAMR
	case has(0, amrWBMagic), has(0, amrWBMCMagic):
		return AudioAMRWB
	case has(0, amrMCMagic):
		return AudioAMRMC
	case has(0, silkMagic), has(1, silkMagic):
		return AudioSILK
	case (has(0, "RIFF") || has(0, "RF64")) && has(8, "WAVE"):
		return AudioWAV
	case has(0, "OggS"):
		return AudioOgg
	case has(0, "fLaC"):
		return AudioFLAC
	case has(4, "ftyp"):
		return AudioMP4
	case has(0, "\x1A\x45\xDF\xA3"):
		return AudioWebM
	case has(0, "FORM") && (has(8, "AIFF") || has(8, "AIFC")):
		return AudioAIFF
	case has(0, "caff"):
		return AudioCAF
	case has(0, asfHeaderGUID):
		return AudioASF
	}
	b = skipID3v2(b)
	if len(b) >= 4 {
		h := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if h>>20 == 0xFFF && h>>17&3 == 0 {
			return AudioAAC // ADTS: sync 0xFFF, layer 00
		}
		if hdr, ok := parseMPEGHeader(h); ok && mpegFollows(b, hdr) {
			if hdr.layer == 3 {
				return AudioMP3
			}
			return AudioMP2
		}
	}
	return AudioUnknown
}

// ToVoice turns an audio file into AMR-NB pieces ready to upload as WeCom voice (at most 60 s and
// 2 MB each, doc 96484), cutting at quiet frames where it can (see AMRSplitter).
//
// AMR-NB input is only split, never re-encoded, and needs no encoder. WAV and MP3 are decoded in pure
// Go, mixed to mono, resampled to 8 kHz with a band-limited filter, cut at the quietest 20 ms frames
// near each limit and encoded piece by piece with enc (ErrNoEncoder when enc is nil). Other formats are decoded by ffmpeg when it is on PATH (ErrNoFFmpeg when it is
// not); SILK is refused with ErrUnsupportedAudio. Input longer than MaxAudioInput fails with
// ErrAudioTooLong, input without any samples with ErrNoAudio. Use a VoiceConverter for other settings.
func ToVoice(ctx context.Context, src []byte, enc AMREncoder) ([][]byte, error) {
	return (&VoiceConverter{Encoder: enc}).Convert(ctx, src)
}

// VoiceConverter converts audio to WeCom voice pieces like ToVoice, with settings. The zero value
// (plus an Encoder) behaves exactly like ToVoice. It is safe for concurrent use if its Encoder is.
type VoiceConverter struct {
	// Encoder encodes non-AMR input; nil limits the converter to AMR-NB input.
	Encoder AMREncoder
	// FFmpeg decodes formats without a pure-Go decoder; nil means &FFmpeg{} (ffmpeg from PATH).
	FFmpeg *FFmpeg
	// MaxInput caps the duration of the input audio; 0 means MaxAudioInput.
	MaxInput time.Duration
	// Splitter sets the piece limits and the quiet-frame search; the zero value applies WeCom's limits.
	Splitter AMRSplitter
}

// Convert turns src into AMR-NB voice pieces; see ToVoice.
func (c *VoiceConverter) Convert(ctx context.Context, src []byte) ([][]byte, error) {
	maxIn := c.MaxInput
	if maxIn <= 0 {
		maxIn = MaxAudioInput
	}
	format := DetectAudio(src)
	switch format {
	case AudioAMR:
		frames, err := scanAMR(src)
		if err != nil {
			return nil, err
		}
		if frames.n() == 0 {
			return nil, fmt.Errorf("%w: AMR file without frames", ErrNoAudio)
		}
		if d := time.Duration(frames.n()) * AMRFrameDuration; d > maxIn {
			return nil, fmt.Errorf("%w: %v of AMR (limit %v)", ErrAudioTooLong, d, maxIn)
		}
		var energy []float64
		if c.Splitter.Decoder != nil && c.Splitter.needsCut(frames) {
			pcm, err := c.Splitter.Decoder.DecodeAMR(ctx, src)
			if err != nil {
				return nil, fmt.Errorf("media: decoding AMR to find quiet frames: %w", err)
			}
			energy = frameEnergy(pcm, frames.n())
		}
		return c.Splitter.split(src, frames, energy)
	case AudioSILK:
		return nil, fmt.Errorf("%w: SILK voice (request AMR from sync_msg with voice_format=0)", ErrUnsupportedAudio)
	}
	if c.Encoder == nil {
		return nil, fmt.Errorf("%w (input is %s)", ErrNoEncoder, formatName(format))
	}
	pcm, err := c.decode(ctx, src, format, maxIn)
	if err != nil {
		return nil, err
	}
	if len(pcm) == 0 {
		return nil, fmt.Errorf("%w: %s input decodes to no samples", ErrNoAudio, formatName(format))
	}
	return c.encode(ctx, pcm)
}

// encode cuts 8 kHz mono PCM into pieces and encodes each on its own. The cuts are planned on the
// PCM, at the quietest frames near each limit (by energy, the same rule AMRSplitter applies), and
// every piece starts from a fresh encoder state, just as the recipient's player starts each voice
// message with a fresh decoder. Byte limits are planned with the largest AMR-NB frame (32 bytes);
// an encoder output still over the limits is split again.
func (c *VoiceConverter) encode(ctx context.Context, pcm []int16) ([][]byte, error) {
	const per = int(AMRFrameDuration * VoiceSampleRate / time.Second)
	n := (len(pcm) + per - 1) / per
	off := make([]int, n+1)
	for i := range off {
		off[i] = i * AMRMode122.Size()
	}
	cuts, err := c.Splitter.plan(off, frameEnergy(pcm, n))
	if err != nil {
		return nil, err
	}
	maxFrames, maxBytes, _, _ := c.Splitter.limits()
	var pieces [][]byte
	for k := range len(cuts) - 1 {
		seg := pcm[cuts[k]*per : min(len(pcm), cuts[k+1]*per)]
		amr, err := c.Encoder.EncodeAMR(ctx, seg)
		if err != nil {
			return nil, fmt.Errorf("media: encoding AMR: %w", err)
		}
		frames, err := scanAMR(amr)
		if err != nil {
			return nil, fmt.Errorf("media: AMR encoder output: %w", err)
		}
		if frames.n() <= maxFrames && len(amr) <= maxBytes {
			pieces = append(pieces, amr)
			continue
		}
		more, err := c.Splitter.split(amr, frames, frameEnergy(seg, frames.n()))
		if err != nil {
			return nil, err
		}
		pieces = append(pieces, more...)
	}
	return pieces, nil
}

// decode turns src into 8 kHz mono PCM of at most maxIn.
func (c *VoiceConverter) decode(ctx context.Context, src []byte, format string, maxIn time.Duration) ([]int16, error) {
	switch format {
	case AudioWAV:
		return wavTo8k(ctx, src, maxIn)
	case AudioMP3:
		pcm, err := mp3To8k(ctx, src, maxIn)
		if !errors.Is(err, ErrUnsupportedMP3) {
			return pcm, err
		}
		// MPEG-2.5 and friends: let ffmpeg try, keeping this error if it is missing.
		ff := c.ffmpeg()
		if _, lookErr := ff.lookPath(); lookErr != nil {
			return nil, err
		}
		return ff.decode(ctx, src, format, maxIn)
	}
	return c.ffmpeg().decode(ctx, src, format, maxIn)
}

func (c *VoiceConverter) ffmpeg() *FFmpeg {
	if c.FFmpeg != nil {
		return c.FFmpeg
	}
	return &FFmpeg{}
}

// maxSamples is the number of samples of maxIn at rate, saturating.
func maxSamples(maxIn time.Duration, rate int) int64 {
	s := maxIn.Seconds() * float64(rate)
	if s > 1<<62 {
		return 1 << 62
	}
	return int64(s)
}

// wavTo8k decodes a WAV file straight to 8 kHz mono PCM, a block at a time.
func wavTo8k(ctx context.Context, src []byte, maxIn time.Duration) ([]int16, error) {
	info, err := parseWAV(src)
	if err != nil {
		return nil, err
	}
	frames := info.frames()
	if int64(frames) > maxSamples(maxIn, info.rate) {
		return nil, fmt.Errorf("%w: %.1f s of WAV (limit %v)", ErrAudioTooLong, float64(frames)/float64(info.rate), maxIn)
	}
	r, err := NewResampler(info.rate, VoiceSampleRate)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, int64(frames)*VoiceSampleRate/int64(info.rate)+1)
	block := make([]int16, 8192)
	for first := 0; first < frames; first += len(block) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(len(block), frames-first)
		info.decode(block[:n], first)
		out = r.Write(out, block[:n])
	}
	return r.Flush(out), nil
}

// formatName is a format for error messages.
func formatName(format string) string {
	if format == AudioUnknown {
		return "unrecognised audio"
	}
	return format
}

// skipID3v2 returns b after any leading ID3v2 tags (id3.org ID3v2.4 §3.1: "ID3", version, flags,
// synchsafe size, optional footer). A tag claiming more bytes than b has leaves b unchanged.
func skipID3v2(b []byte) []byte {
	for len(b) >= 10 && bytes.HasPrefix(b, []byte("ID3")) {
		if (b[6]|b[7]|b[8]|b[9])&0x80 != 0 {
			return b // not synchsafe: not a tag
		}
		size := 10 + (int(b[6])<<21 | int(b[7])<<14 | int(b[8])<<7 | int(b[9]))
		if b[5]&0x10 != 0 {
			size += 10 // footer
		}
		if size > len(b) {
			return b
		}
		b = b[size:]
	}
	return b
}
