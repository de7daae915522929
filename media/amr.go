package media

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// AMR-NB storage format (RFC 4867 §5.1 and §5.3): the magic "#!AMR\n" followed by frames, each one
// header octet (P FT(4) Q P P) and the speech bits of its frame type padded to whole octets.
// WeCom only plays AMR-NB voice (§9, doc 96484).

// AMRMagic is the header of a single-channel AMR-NB file (RFC 4867 §5.1).
const AMRMagic = "#!AMR\n"

// Headers of AMR variants WeCom does not accept as voice (RFC 4867 §5.1, §5.2).
const (
	amrWBMagic   = "#!AMR-WB\n"
	amrMCMagic   = "#!AMR_MC1.0\n"
	amrWBMCMagic = "#!AMR-WB_MC1.0\n"
)

// AMRFrameDuration is the audio time of one AMR-NB frame of any type (160 samples at 8 kHz).
const AMRFrameDuration = 20 * time.Millisecond

// Sentinel errors of the AMR parser; match with errors.Is.
var (
	// ErrNotAMRNB reports data that does not start with the single-channel AMR-NB magic
	// (including AMR-WB and multichannel AMR files, which WeCom does not play).
	ErrNotAMRNB = errors.New("media: not an AMR-NB file")
	// ErrCorruptAMR reports an AMR-NB file whose frames cannot be parsed: a reserved frame type
	// (12–14) or a frame cut short by the end of the data.
	ErrCorruptAMR = errors.New("media: corrupt AMR-NB file")
)

// AMRFrameType is the 4-bit FT field of an AMR-NB frame header (RFC 4867 §4.3.2, 3GPP TS 26.101).
type AMRFrameType uint8

// AMR-NB frame types. 0–7 are the speech modes, 8 is the AMR comfort-noise (SID) frame, 9–11 are SID
// frames of other codecs of the family, 12–14 are reserved and 15 is NO_DATA (nothing transmitted).
const (
	AMRMode475    AMRFrameType = iota // 4.75 kbit/s
	AMRMode515                        // 5.15 kbit/s
	AMRMode59                         // 5.90 kbit/s
	AMRMode67                         // 6.70 kbit/s
	AMRMode74                         // 7.40 kbit/s
	AMRMode795                        // 7.95 kbit/s
	AMRMode102                        // 10.2 kbit/s
	AMRMode122                        // 12.2 kbit/s
	AMRSID                            // AMR SID (comfort noise)
	AMRSIDGSMEFR                      // GSM-EFR SID
	AMRSIDTDMAEFR                     // TDMA-EFR SID
	AMRSIDPDCEFR                      // PDC-EFR SID
	AMRNoData     AMRFrameType = 15   // NO_DATA
)

// amrFrameBits is the number of payload bits of each frame type (RFC 4867 §3.6 / 3GPP TS 26.101
// Table 1a); 0 for the reserved types 12–14 and NO_DATA.
var amrFrameBits = [16]int{95, 103, 118, 134, 148, 159, 204, 244, 39, 43, 38, 37, 0, 0, 0, 0}

// amrFrameSize is the stored size of each frame type including its header octet; 0 marks a reserved
// type. Derived from amrFrameBits: 1 + ceil(bits/8).
var amrFrameSize = [16]int{13, 14, 16, 18, 20, 21, 27, 32, 6, 7, 6, 6, 0, 0, 0, 1}

// Size is the stored size of a frame of type t in bytes, header octet included (RFC 4867 §5.3),
// or 0 when t is a reserved type (12–14) or out of range.
func (t AMRFrameType) Size() int {
	if t > 15 {
		return 0
	}
	return amrFrameSize[t]
}

// Bits is the number of codec payload bits of a frame of type t (0 for reserved types and NO_DATA).
func (t AMRFrameType) Bits() int {
	if t > 15 {
		return 0
	}
	return amrFrameBits[t]
}

// IsSpeech reports whether t is one of the eight speech modes (0–7).
func (t AMRFrameType) IsSpeech() bool { return t <= AMRMode122 }

// IsQuiet reports whether t carries no speech: a SID (comfort noise, 8–11) or NO_DATA frame. An
// encoder with DTX emits these during silence, so they are the natural places to cut a recording.
func (t AMRFrameType) IsQuiet() bool { return (t >= AMRSID && t <= AMRSIDPDCEFR) || t == AMRNoData }

// Valid reports whether t is a frame type that may appear in an AMR-NB file (not 12–14).
func (t AMRFrameType) Valid() bool { return t.Size() > 0 }

// String names t as 3GPP TS 26.101 does ("MR122", "SID", "NO_DATA", …).
func (t AMRFrameType) String() string {
	names := [16]string{"MR475", "MR515", "MR59", "MR67", "MR74", "MR795", "MR102", "MR122",
		"SID", "GSM-EFR SID", "TDMA-EFR SID", "PDC-EFR SID", "reserved(12)", "reserved(13)",
		"reserved(14)", "NO_DATA"}
	if t > 15 {
		return fmt.Sprintf("AMRFrameType(%d)", uint8(t))
	}
	return names[t]
}

// AMRFrame is one frame of an AMR-NB file.
type AMRFrame struct {
	Type AMRFrameType
	// Good is the Q bit of the header: false marks a frame the sender knew to be damaged.
	Good bool
	// Raw is the stored frame, header octet first; it aliases the data given to ParseAMR.
	Raw []byte
}

// AMRFile is a parsed single-channel AMR-NB file.
type AMRFile struct {
	Frames []AMRFrame
}

// Duration is the audio time of the file: 20 ms per frame of any type (RFC 4867 §5.3).
func (f *AMRFile) Duration() time.Duration {
	return time.Duration(len(f.Frames)) * AMRFrameDuration
}

// Size is the size of the file as stored, magic included.
func (f *AMRFile) Size() int {
	n := len(AMRMagic)
	for _, fr := range f.Frames {
		n += len(fr.Raw)
	}
	return n
}

// Bytes returns the file in storage format: the magic followed by every frame.
func (f *AMRFile) Bytes() []byte {
	out := make([]byte, 0, f.Size())
	out = append(out, AMRMagic...)
	for _, fr := range f.Frames {
		out = append(out, fr.Raw...)
	}
	return out
}

// amrVariant names the AMR flavour of data for an error message, or "" when it is not AMR at all.
func amrVariant(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte(amrWBMCMagic)):
		return "multichannel AMR-WB"
	case bytes.HasPrefix(b, []byte(amrWBMagic)):
		return "AMR-WB"
	case bytes.HasPrefix(b, []byte(amrMCMagic)):
		return "multichannel AMR"
	}
	return ""
}

// checkAMRMagic returns nil when b starts with the single-channel AMR-NB magic, else ErrNotAMRNB
// wrapped with what b is instead.
func checkAMRMagic(b []byte) error {
	if bytes.HasPrefix(b, []byte(AMRMagic)) {
		return nil
	}
	if v := amrVariant(b); v != "" {
		return fmt.Errorf("%w: %s", ErrNotAMRNB, v)
	}
	return ErrNotAMRNB
}

// walkAMR calls fn for every frame of the AMR-NB file b (magic already checked) with the frame's
// offset and type, and returns the number of frames. It stops with ErrCorruptAMR at a reserved
// frame type or a truncated frame, and with fn's error when fn fails.
func walkAMR(b []byte, fn func(off int, t AMRFrameType) error) (int, error) {
	n := 0
	for off := len(AMRMagic); off < len(b); n++ {
		t := AMRFrameType(b[off] >> 3 & 0x0f)
		size := amrFrameSize[t]
		if size == 0 {
			return n, fmt.Errorf("%w: reserved frame type %d in frame %d at byte %d", ErrCorruptAMR, t, n, off)
		}
		if size > len(b)-off {
			return n, fmt.Errorf("%w: frame %d (%s) at byte %d needs %d bytes, %d left",
				ErrCorruptAMR, n, t, off, size, len(b)-off)
		}
		if fn != nil {
			if err := fn(off, t); err != nil {
				return n, err
			}
		}
		off += size
	}
	return n, nil
}

// ParseAMR parses a single-channel AMR-NB file (RFC 4867 §5.1, §5.3). It fails with ErrNotAMRNB when
// the magic is missing (AMR-WB and multichannel files included) and with ErrCorruptAMR on a reserved
// frame type or a truncated last frame. The frames alias b. Padding bits of frame headers are ignored,
// as RFC 4867 §5.3 asks of receivers.
func ParseAMR(b []byte) (*AMRFile, error) {
	if err := checkAMRMagic(b); err != nil {
		return nil, err
	}
	n, err := walkAMR(b, nil)
	if err != nil {
		return nil, err
	}
	f := &AMRFile{Frames: make([]AMRFrame, 0, n)}
	_, err = walkAMR(b, func(off int, t AMRFrameType) error {
		size := amrFrameSize[t]
		f.Frames = append(f.Frames, AMRFrame{Type: t, Good: b[off]&0x04 != 0, Raw: b[off : off+size : off+size]})
		return nil
	})
	return f, err
}

// AMRDuration returns the audio time of the AMR-NB file b by counting its frames, without allocating.
func AMRDuration(b []byte) (time.Duration, error) {
	if err := checkAMRMagic(b); err != nil {
		return 0, err
	}
	n, err := walkAMR(b, nil)
	if err != nil {
		return 0, err
	}
	return time.Duration(n) * AMRFrameDuration, nil
}

// CheckVoice checks a voice upload against WeCom's rules (§9, doc 96484):
// a single-channel AMR-NB file ("#!AMR\n" magic, well-formed frames), larger than 5 bytes, at most
// MaxVoiceBytes (2 MB) and at most MaxVoiceDuration (60 s) long counting 20 ms per frame. The error
// is a *LimitError with Kind KindVoice naming the rule broken: "voice is not AMR-NB",
// "voice larger than 2 MB" or "voice longer than 60 s".
func CheckVoice(data []byte) error {
	if len(data) < MinMediaBytes {
		return &LimitError{Kind: KindVoice, Limit: "voice must be larger than 5 bytes", Got: fmt.Sprintf("%d bytes", len(data))}
	}
	if err := checkAMRMagic(data); err != nil {
		got := amrVariant(data)
		if got == "" {
			got = "no #!AMR header"
		}
		return &LimitError{Kind: KindVoice, Limit: "voice is not AMR-NB", Got: got}
	}
	if len(data) > MaxVoiceBytes {
		return &LimitError{Kind: KindVoice, Limit: "voice larger than 2 MB", Got: amrFormatMB(len(data))}
	}
	n, err := walkAMR(data, nil)
	if err != nil {
		return &LimitError{Kind: KindVoice, Limit: "voice is not AMR-NB", Got: err.Error()}
	}
	if d := time.Duration(n) * AMRFrameDuration; d > MaxVoiceDuration {
		return &LimitError{Kind: KindVoice, Limit: "voice longer than 60 s", Got: fmt.Sprintf("%.2f s", d.Seconds())}
	}
	return nil
}

// amrFormatMB renders a byte count in MB (2^20 bytes) with enough precision to show it is over a limit.
func amrFormatMB(n int) string {
	return fmt.Sprintf("%.3f MB", float64(n)/(1<<20))
}
