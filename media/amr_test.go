package media

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// amrFrame returns one stored frame of type t with Q set and a recognisable payload.
func amrFrame(t AMRFrameType, fill byte) []byte {
	f := make([]byte, t.Size())
	f[0] = byte(t)<<3 | 0x04
	for i := 1; i < len(f); i++ {
		f[i] = fill + byte(i)
	}
	return f
}

// amrOf builds an AMR-NB file from frame types.
func amrOf(types ...AMRFrameType) []byte {
	b := []byte(AMRMagic)
	for i, t := range types {
		b = append(b, amrFrame(t, byte(i))...)
	}
	return b
}

// repeatType is n frames of type t.
func repeatType(t AMRFrameType, n int) []AMRFrameType {
	out := make([]AMRFrameType, n)
	for i := range out {
		out[i] = t
	}
	return out
}

// TestAMRFrameSizes pins the RFC 4867 §5.3 storage sizes: header octet plus the frame's bits
// (3GPP TS 26.101 Table 1a) padded to whole octets.
func TestAMRFrameSizes(t *testing.T) {
	t.Parallel()
	want := map[AMRFrameType]int{
		AMRMode475: 13, AMRMode515: 14, AMRMode59: 16, AMRMode67: 18, AMRMode74: 20, AMRMode795: 21,
		AMRMode102: 27, AMRMode122: 32, AMRSID: 6, AMRSIDGSMEFR: 7, AMRSIDTDMAEFR: 6, AMRSIDPDCEFR: 6,
		12: 0, 13: 0, 14: 0, AMRNoData: 1, 16: 0, 255: 0,
	}
	for ft, size := range want {
		assert.Equal(t, size, ft.Size(), "%v", ft)
		if ft <= 15 && size > 0 {
			assert.Equal(t, 1+(ft.Bits()+7)/8, size, "%v", ft)
		}
		assert.Equal(t, size > 0, ft.Valid(), "%v", ft)
	}
	for ft := AMRFrameType(0); ft <= 15; ft++ {
		assert.Equal(t, ft <= 7, ft.IsSpeech(), "%v", ft)
		assert.Equal(t, ft >= 8 && ft <= 11 || ft == 15, ft.IsQuiet(), "%v", ft)
	}
	assert.Equal(t, "MR122", AMRMode122.String())
	assert.Equal(t, "NO_DATA", AMRNoData.String())
	assert.Equal(t, "reserved(13)", AMRFrameType(13).String())
	assert.Equal(t, "AMRFrameType(16)", AMRFrameType(16).String())
}

func TestParseAMRAllFrameTypes(t *testing.T) {
	t.Parallel()
	types := []AMRFrameType{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 7}
	b := amrOf(types...)
	f, err := ParseAMR(b)
	require.NoError(t, err)
	require.Len(t, f.Frames, len(types))
	off := len(AMRMagic)
	for i, fr := range f.Frames {
		assert.Equal(t, types[i], fr.Type)
		assert.True(t, fr.Good)
		assert.Equal(t, b[off:off+types[i].Size()], fr.Raw)
		off += len(fr.Raw)
	}
	assert.Equal(t, 14*20*time.Millisecond, f.Duration())
	assert.Equal(t, len(b), f.Size())
	assert.Equal(t, b, f.Bytes())
	d, err := AMRDuration(b)
	require.NoError(t, err)
	assert.Equal(t, f.Duration(), d)
}

func TestParseAMRHeaderBits(t *testing.T) {
	t.Parallel()
	// Q = 0 marks a damaged frame; the padding bits (P, bits 7, 1, 0) are ignored as RFC 4867 asks.
	b := []byte(AMRMagic + "\x78" + "\xfc" + "\x44\x01\x02\x03\x04\x05" + "\x7f")
	f, err := ParseAMR(b)
	require.NoError(t, err)
	require.Len(t, f.Frames, 4)
	assert.Equal(t, AMRNoData, f.Frames[0].Type)
	assert.False(t, f.Frames[0].Good)
	assert.Equal(t, AMRNoData, f.Frames[1].Type, "P bit 7 set")
	assert.True(t, f.Frames[1].Good)
	assert.Equal(t, AMRSID, f.Frames[2].Type)
	assert.Len(t, f.Frames[2].Raw, 6)
	assert.Equal(t, AMRNoData, f.Frames[3].Type, "padding bits 1 and 0 set")
	assert.True(t, f.Frames[3].Good)
}

func TestParseAMRErrors(t *testing.T) {
	t.Parallel()
	full := amrOf(AMRMode122, AMRMode475)
	tests := []struct {
		name string
		b    []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrNotAMRNB, ""},
		{"5 bytes of magic", []byte("#!AMR"), ErrNotAMRNB, ""},
		{"AMR-WB", []byte("#!AMR-WB\n\x04"), ErrNotAMRNB, "AMR-WB"},
		{"multichannel AMR", []byte("#!AMR_MC1.0\n\x00\x00\x00\x01"), ErrNotAMRNB, "multichannel AMR"},
		{"multichannel AMR-WB", []byte("#!AMR-WB_MC1.0\n\x00\x00\x00\x01"), ErrNotAMRNB, "multichannel AMR-WB"},
		{"lowercase", []byte("#!amr\n\x3c"), ErrNotAMRNB, ""},
		{"WAV", EncodeWAV([]int16{1}, 8000), ErrNotAMRNB, ""},
		{"reserved 12", amrOf(AMRMode122, 0, AMRNoData)[:39], ErrCorruptAMR, ""},
		{"truncated last frame", full[:len(full)-1], ErrCorruptAMR, "frame 1"},
		{"header only of a 12.2 frame", []byte(AMRMagic + "\x3c"), ErrCorruptAMR, "needs 32 bytes, 1 left"},
	}
	// amrOf cannot build reserved types; patch a header.
	tests[7].b = append([]byte(AMRMagic), amrFrame(AMRMode122, 0)...)
	tests[7].b = append(tests[7].b, 12<<3|4, 0, 0, 0)
	for ft := AMRFrameType(13); ft <= 14; ft++ {
		tests = append(tests, struct {
			name string
			b    []byte
			want error
			msg  string
		}{fmt.Sprintf("reserved %d", ft), []byte(AMRMagic + string([]byte{byte(ft)<<3 | 4})), ErrCorruptAMR, "reserved frame type"})
	}
	for ft := AMRFrameType(0); ft <= 11; ft++ {
		f := amrOf(ft)
		tests = append(tests, struct {
			name string
			b    []byte
			want error
			msg  string
		}{fmt.Sprintf("truncated %v", ft), f[:len(f)-1], ErrCorruptAMR, "left"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseAMR(tt.b)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, f)
			assert.Contains(t, err.Error(), tt.msg)
			_, err = AMRDuration(tt.b)
			require.ErrorIs(t, err, tt.want)
			_, err = SplitAMR(tt.b, 0, 0)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// TestCheckVoice covers WeCom's voice upload rules (doc 96484): AMR, > 5 bytes, ≤ 2 MB, ≤ 60 s.
func TestCheckVoice(t *testing.T) {
	t.Parallel()
	sixty := amrOf(repeatType(AMRMode122, 3000)...)
	over := amrOf(repeatType(AMRMode122, 3001)...)
	// 2 MB + 1 byte of valid frames: NO_DATA frames are 1 byte, so this is 11 hours long as well.
	huge := append([]byte(AMRMagic), bytes.Repeat([]byte{0x7c}, MaxVoiceBytes+1-len(AMRMagic))...)
	tests := []struct {
		name  string
		b     []byte
		limit string // "" means accepted
		got   string
	}{
		{"one frame", amrOf(AMRMode122), "", ""},
		{"header only", []byte(AMRMagic), "", ""},
		{"every frame type", amrOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15), "", ""},
		{"exactly 60 s", sixty, "", ""},
		{"60.02 s", over, "voice longer than 60 s", "60.02 s"},
		{"larger than 2 MB", huge, "voice larger than 2 MB", "2.000 MB"},
		{"5 bytes", []byte("#!AMR"), "voice must be larger than 5 bytes", "5 bytes"},
		{"empty", nil, "voice must be larger than 5 bytes", "0 bytes"},
		{"AMR-WB", []byte("#!AMR-WB\n\x04\x00"), "voice is not AMR-NB", "AMR-WB"},
		{"MP3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "voice is not AMR-NB", "no #!AMR header"},
		{"truncated frame", sixty[:len(sixty)-3], "voice is not AMR-NB", "frame 2999"},
		{"reserved frame type", []byte(AMRMagic + "\x6c"), "voice is not AMR-NB", "reserved frame type 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckVoice(tt.b)
			if tt.limit == "" {
				require.NoError(t, err)
				return
			}
			var le *LimitError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, KindVoice, le.Kind)
			assert.Equal(t, tt.limit, le.Limit)
			assert.Contains(t, le.Got, tt.got)
		})
	}
}

// frameTypes parses b and returns its frame types.
func frameTypes(t testing.TB, b []byte) []AMRFrameType {
	f, err := ParseAMR(b)
	require.NoError(t, err)
	out := make([]AMRFrameType, len(f.Frames))
	for i, fr := range f.Frames {
		out[i] = fr.Type
	}
	return out
}

// checkPieces asserts the SplitAMR contract: valid AMR-NB pieces within the limits whose frames,
// joined, are exactly the input's. It returns the number of frames of each piece.
func checkPieces(t testing.TB, in []byte, pieces [][]byte, maxDur time.Duration, maxBytes int) []int {
	joined := []byte{}
	var counts []int
	for i, p := range pieces {
		require.True(t, bytes.HasPrefix(p, []byte(AMRMagic)), "piece %d header", i)
		require.LessOrEqual(t, len(p), maxBytes, "piece %d size", i)
		d, err := AMRDuration(p)
		require.NoError(t, err, "piece %d", i)
		require.LessOrEqual(t, d, maxDur, "piece %d duration", i)
		if len(pieces) > 1 {
			require.Positive(t, d, "piece %d is empty", i)
		}
		counts = append(counts, int(d/AMRFrameDuration))
		joined = append(joined, p[len(AMRMagic):]...)
	}
	require.Equal(t, in[len(AMRMagic):], joined, "pieces do not add up to the input")
	return counts
}

func TestSplitAMRAtLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		types    []AMRFrameType
		maxDur   time.Duration
		maxBytes int
		want     []int // frames per piece
	}{
		{"short file is one piece", repeatType(AMRMode122, 100), 0, 0, []int{100}},
		{"exactly 60 s is one piece", repeatType(AMRMode122, 3000), 0, 0, []int{3000}},
		{"150 s of speech, cut hard at 60 s", repeatType(AMRMode122, 7500), 0, 0, []int{3000, 3000, 1500}},
		{"60.02 s", repeatType(AMRMode475, 3001), 0, 0, []int{3000, 1}},
		{"byte limit binds", repeatType(AMRMode122, 250), 0, 6 + 32*100, []int{100, 100, 50}},
		{"byte limit one frame", repeatType(AMRMode122, 3), time.Minute, 6 + 32, []int{1, 1, 1}},
		{"duration limit one frame", repeatType(AMRMode122, 3), 20 * time.Millisecond, 0, []int{1, 1, 1}},
		{"duration not a frame multiple", repeatType(AMRMode122, 10), 50 * time.Millisecond, 0, []int{2, 2, 2, 2, 2}},
		{"no frames", nil, 0, 0, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := amrOf(tt.types...)
			pieces, err := SplitAMR(in, tt.maxDur, tt.maxBytes)
			require.NoError(t, err)
			maxDur, maxBytes := cmp(tt.maxDur, MaxVoiceDuration), cmp(tt.maxBytes, MaxVoiceBytes)
			assert.Equal(t, tt.want, checkPieces(t, in, pieces, maxDur, maxBytes))
			for _, p := range pieces {
				require.NoError(t, checkVoiceLimits(p, maxDur, maxBytes))
			}
		})
	}
}

// cmp returns v, or def when v is zero.
func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// checkVoiceLimits is CheckVoice with other limits, for split tests.
func checkVoiceLimits(b []byte, maxDur time.Duration, maxBytes int) error {
	d, err := AMRDuration(b)
	if err != nil {
		return err
	}
	if d > maxDur || len(b) > maxBytes {
		return errors.New("over the limits")
	}
	return nil
}

// TestSplitAMRPrefersQuietFrames: within the last 5 s before a forced cut, the cut goes into a run of
// SID/NO_DATA frames (silence under DTX) rather than through speech.
func TestSplitAMRPrefersQuietFrames(t *testing.T) {
	t.Parallel()
	// speech with a 300 ms pause starting at frame at; quiet frames of type q.
	withPause := func(n, at int, q AMRFrameType) []AMRFrameType {
		types := repeatType(AMRMode122, n)
		for i := at; i < at+15; i++ {
			types[i] = q
		}
		return types
	}
	tests := []struct {
		name   string
		types  []AMRFrameType
		window time.Duration
		first  [2]int // the first cut lies in [first[0], first[1]]
	}{
		{"NO_DATA pause at 57 s", withPause(4000, 2850, AMRNoData), 0, [2]int{2853, 2862}},
		{"SID pause at 56 s", withPause(4000, 2800, AMRSID), 0, [2]int{2803, 2812}},
		{"pause ending at the limit", withPause(4000, 2985, AMRNoData), 0, [2]int{2988, 2997}},
		{"pause outside the window is ignored", withPause(4000, 2700, AMRNoData), 0, [2]int{3000, 3000}},
		{"wider window reaches it", withPause(4000, 2700, AMRNoData), 10 * time.Second, [2]int{2703, 2712}},
		{"negative window cuts hard", withPause(4000, 2850, AMRNoData), -1, [2]int{3000, 3000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := amrOf(tt.types...)
			pieces, err := AMRSplitter{Window: tt.window}.Split(t.Context(), in)
			require.NoError(t, err)
			counts := checkPieces(t, in, pieces, MaxVoiceDuration, MaxVoiceBytes)
			require.GreaterOrEqual(t, len(counts), 2)
			assert.GreaterOrEqual(t, counts[0], tt.first[0])
			assert.LessOrEqual(t, counts[0], tt.first[1])
			// The cut has quiet frames on both sides when it found a pause.
			if tt.first[0] != 3000 {
				types := frameTypes(t, pieces[0])
				assert.True(t, types[len(types)-1].IsQuiet())
				assert.True(t, frameTypes(t, pieces[1])[0].IsQuiet())
			}
		})
	}
}

// TestSplitAMRUsesEnergy: with per-frame energy (from the PCM an encoder was given, or from a
// decoder), speech frames are told apart and the cut goes where the audio is quietest.
func TestSplitAMRUsesEnergy(t *testing.T) {
	t.Parallel()
	types := repeatType(AMRMode122, 4000)
	in := amrOf(types...)
	frames, err := scanAMR(in)
	require.NoError(t, err)
	energy := make([]float64, len(types))
	for i := range energy {
		energy[i] = 1e6
	}
	for i := 2900; i < 2910; i++ { // a quiet 200 ms at 58 s
		energy[i] = 10
	}
	energy[2990] = 0 // a single silent frame is not a pause
	pieces, err := AMRSplitter{}.split(in, frames, energy)
	require.NoError(t, err)
	counts := checkPieces(t, in, pieces, MaxVoiceDuration, MaxVoiceBytes)
	assert.Equal(t, []int{2907, 1093}, counts, "latest cut with a quiet frame on each side")
}

func TestFrameEnergy(t *testing.T) {
	t.Parallel()
	pcm := make([]int16, 320)
	for i := 160; i < 320; i++ {
		pcm[i] = 100
	}
	assert.Equal(t, []float64{0, 10000}, frameEnergy(pcm, 2))
	assert.Equal(t, []float64{0, 5000}, frameEnergy(pcm[:240], 2), "last frame padded with silence")
	assert.Nil(t, frameEnergy(pcm, 3))
	assert.Nil(t, frameEnergy(pcm[:160], 2))
	assert.Nil(t, frameEnergy(pcm, 1))
	assert.Nil(t, frameEnergy(nil, 0))
}

func TestSplitAMRLimitErrors(t *testing.T) {
	t.Parallel()
	in := amrOf(AMRMode122, AMRMode122)
	_, err := SplitAMR(in, 19*time.Millisecond, 0)
	require.ErrorIs(t, err, ErrSplitLimit)
	_, err = SplitAMR(in, 0, 37)
	require.ErrorIs(t, err, ErrSplitLimit)
	_, err = AMRSplitter{MaxBytes: 37}.Split(t.Context(), in)
	require.ErrorIs(t, err, ErrSplitLimit)
}

func FuzzParseAMR(f *testing.F) {
	f.Add(amrOf(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15))
	f.Add([]byte(AMRMagic + "\x3c\x00"))
	f.Add([]byte(AMRMagic + "\x6c"))
	f.Add([]byte("#!AMR-WB\n\x04"))
	f.Add([]byte(AMRMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := ParseAMR(b)
		d, derr := AMRDuration(b)
		cerr := CheckVoice(b)
		if err != nil {
			require.Nil(t, file)
			require.True(t, errors.Is(err, ErrNotAMRNB) || errors.Is(err, ErrCorruptAMR), "%v", err)
			require.Error(t, derr)
			require.Error(t, cerr)
			return
		}
		require.NoError(t, derr)
		require.Equal(t, b, file.Bytes())
		require.Equal(t, d, file.Duration())
		for _, fr := range file.Frames {
			require.True(t, fr.Type.Valid())
			require.Len(t, fr.Raw, fr.Type.Size())
			require.Equal(t, fr.Type, AMRFrameType(fr.Raw[0]>>3&15))
		}
		require.Equal(t, cerr == nil, len(b) <= MaxVoiceBytes && d <= MaxVoiceDuration, "%v", cerr)
	})
}

func FuzzSplitAMR(f *testing.F) {
	f.Add(amrOf(AMRMode122, AMRNoData, AMRSID, AMRMode475), uint16(3), uint16(100), int16(2))
	f.Add(amrOf(repeatType(AMRMode795, 300)...), uint16(60), uint16(0), int16(0))
	f.Add([]byte(AMRMagic), uint16(1), uint16(38), int16(-1))
	f.Fuzz(func(t *testing.T, b []byte, frames, maxBytes uint16, window int16) {
		maxDur := time.Duration(frames) * AMRFrameDuration
		s := AMRSplitter{MaxDuration: maxDur, MaxBytes: int(maxBytes), Window: time.Duration(window) * AMRFrameDuration}
		pieces, err := s.Split(t.Context(), b)
		if _, perr := ParseAMR(b); perr != nil {
			require.Error(t, err)
			require.Equal(t, perr.Error(), err.Error(), "the same parse error")
			return
		}
		if errors.Is(err, ErrSplitLimit) {
			return
		}
		require.NoError(t, err)
		checkPieces(t, b, pieces, cmp(maxDur, MaxVoiceDuration), cmp(int(maxBytes), MaxVoiceBytes))
	})
}

func BenchmarkSplitAMR(b *testing.B) {
	// 30 min of 12.2 kbit/s speech with a 300 ms DTX pause every 7 s.
	types := repeatType(AMRMode122, 90000)
	for i := 0; i+15 < len(types); i += 350 {
		for j := i; j < i+15; j++ {
			types[j] = AMRNoData
		}
	}
	in := amrOf(types...)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		pieces, err := SplitAMR(in, 0, 0)
		if err != nil || len(pieces) < 30 || len(pieces) > 36 {
			b.Fatal(len(pieces), err)
		}
	}
}
