package amrnb_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxkf/wxkf/media"
	"github.com/wxkf/wxkf/media/amrnb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// codecDelay bounds the lag search: AMR-NB's algorithmic delay is 25 ms at most (20 ms frame +
// 5 ms look-ahead), 200 samples at 8 kHz.
const codecDelay = 200

// TestRoundTrip encodes a tone and a speech-like signal in every mode, decodes them and compares.
// AMR-NB is a CELP codec: it matches the waveform (analysis by synthesis), so after aligning for the
// codec delay the decoded signal correlates strongly with the input. A broken bit order, mode table,
// frame alignment or sample format drops the correlation to around 0, which is what the thresholds
// catch; they sit a little below what the codec reaches (measured with libopencore-amrnb 0.1.6:
// tones 0.946–0.999 over all modes and ≥ 0.975 at 12.2 kbit/s; the speech-like signal, with its
// noise bursts, 0.86 at 4.75 kbit/s rising to 0.92 at 12.2 kbit/s).
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	signals := map[string][]int16{
		"tone 440 Hz": tone(8000, 440, 3, 8000),
		"tone 1 kHz":  tone(8000, 1000, 3, 10000),
		"speech-like": speechLike(8000, 3.01, 1), // not a whole number of frames
	}
	dec := amrnb.NewDecoder()
	for mode := amrnb.MR475; mode <= amrnb.MR122; mode++ {
		for name, sig := range signals {
			t.Run(fmt.Sprintf("%d/%s", mode, name), func(t *testing.T) {
				t.Parallel()
				enc, err := amrnb.NewEncoder(amrnb.WithMode(mode))
				require.NoError(t, err)
				amr, err := enc.EncodeAMR(t.Context(), sig)
				require.NoError(t, err)

				f, err := media.ParseAMR(amr)
				require.NoError(t, err)
				frames := (len(sig) + 159) / 160
				require.Len(t, f.Frames, frames)
				for _, fr := range f.Frames {
					require.Equal(t, media.AMRFrameType(mode), fr.Type, "DTX is off: every frame in the chosen mode")
					require.True(t, fr.Good)
				}
				require.NoError(t, media.CheckVoice(amr))

				pcm, err := dec.DecodeAMR(t.Context(), amr)
				require.NoError(t, err)
				require.Len(t, pcm, frames*160, "duration matches to the frame")
				assert.InDelta(t, float64(len(sig))/8000, f.Duration().Seconds(), 0.02)

				// One second from the middle is plenty, and keeps -race runs short.
				c, lag := bestCorrelation(sig[8000:16000], pcm[8000:16000+codecDelay], codecDelay)
				want := 0.9 // tones
				if name == "speech-like" {
					want = 0.8
					// A non-periodic signal pins the lag: the codec delays by its 5 ms look-ahead.
					assert.InDelta(t, 40, lag, 8, "codec delay")
				}
				if mode == amrnb.MR122 {
					want += 0.05
				}
				assert.GreaterOrEqual(t, c, want, "correlation %.4f at lag %d", c, lag)
			})
		}
	}
}

func TestDecodeToWAV(t *testing.T) {
	t.Parallel()
	enc, err := amrnb.NewEncoder()
	require.NoError(t, err)
	amr, err := enc.EncodeAMR(t.Context(), speechLike(8000, 1, 2))
	require.NoError(t, err)
	dec := amrnb.NewDecoder()
	want, err := dec.DecodeAMR(t.Context(), amr)
	require.NoError(t, err)
	wav, err := dec.DecodeToWAV(t.Context(), amr)
	require.NoError(t, err)
	got, rate, err := media.DecodeWAV(wav)
	require.NoError(t, err)
	assert.Equal(t, 8000, rate)
	assert.Equal(t, want, got)
}

// TestDTX: with DTX, silence becomes SID and NO_DATA frames (the quiet frames SplitAMR cuts at),
// and decodes to near-silence.
func TestDTX(t *testing.T) {
	t.Parallel()
	sig := append(speechLike(8000, 1, 3), make([]int16, 8000*2)...)
	sig = append(sig, speechLike(8000, 1, 4)...)
	enc, err := amrnb.NewEncoder(amrnb.WithDTX(true), amrnb.WithMode(amrnb.MR795))
	require.NoError(t, err)
	amr, err := enc.EncodeAMR(t.Context(), sig)
	require.NoError(t, err)
	f, err := media.ParseAMR(amr)
	require.NoError(t, err)
	require.Len(t, f.Frames, 200)
	counts := map[media.AMRFrameType]int{}
	for _, fr := range f.Frames {
		counts[fr.Type]++
	}
	assert.Positive(t, counts[media.AMRSID])
	assert.Greater(t, counts[media.AMRNoData], 50, "%v", counts)
	assert.Positive(t, counts[media.AMRMode795])
	for i := 60; i < 140; i++ { // the middle of the silence
		assert.True(t, f.Frames[i].Type.IsQuiet(), "frame %d is %v", i, f.Frames[i].Type)
	}

	noDTX, err := amrnb.NewEncoder(amrnb.WithMode(amrnb.MR795))
	require.NoError(t, err)
	plain, err := noDTX.EncodeAMR(t.Context(), sig)
	require.NoError(t, err)
	assert.Less(t, len(amr), len(plain)*3/4, "DTX saves the silence")

	pcm, err := amrnb.NewDecoder().DecodeAMR(t.Context(), amr)
	require.NoError(t, err)
	require.Len(t, pcm, len(sig))
	var quiet float64
	for _, v := range pcm[8000+1600 : 3*8000-1600] {
		quiet = max(quiet, float64(abs(v)))
	}
	assert.Less(t, quiet, 300.0, "comfort noise in the silence stays quiet")
}

func abs(v int16) int {
	if v < 0 {
		return -int(v)
	}
	return int(v)
}

func TestEncoderOptions(t *testing.T) {
	t.Parallel()
	for _, m := range []amrnb.Mode{-1, 8, 100} {
		_, err := amrnb.NewEncoder(amrnb.WithMode(m))
		require.Error(t, err, "mode %d", m)
	}
	enc, err := amrnb.NewEncoder()
	require.NoError(t, err)
	amr, err := enc.EncodeAMR(t.Context(), tone(8000, 500, 0.1, 5000))
	require.NoError(t, err)
	assert.Len(t, amr, 6+5*32, "default MR122: 32-byte frames")

	amr, err = enc.EncodeAMR(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []byte(media.AMRMagic), amr)
	amr, err = enc.EncodeAMR(t.Context(), []int16{1})
	require.NoError(t, err)
	assert.Len(t, amr, 6+32, "a partial frame is padded")
}

func TestDecoderRejectsBadInput(t *testing.T) {
	t.Parallel()
	dec := amrnb.NewDecoder()
	for name, tt := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":           {nil, media.ErrNotAMRNB},
		"AMR-WB":          {[]byte("#!AMR-WB\n\x04\x00"), media.ErrNotAMRNB},
		"truncated frame": {[]byte("#!AMR\n\x3c\x00\x00"), media.ErrCorruptAMR},
		"reserved type":   {[]byte("#!AMR\n\x64"), media.ErrCorruptAMR},
	} {
		_, err := dec.DecodeAMR(t.Context(), tt.in)
		require.ErrorIs(t, err, tt.want, name)
		_, err = dec.DecodeToWAV(t.Context(), tt.in)
		require.ErrorIs(t, err, tt.want, name)
	}
	// 2 minutes of 1-byte NO_DATA frames: 240 bytes of input, 1.9 MB of PCM.
	bomb := append([]byte(media.AMRMagic), bytes.Repeat([]byte{0x7c}, 6000)...)
	_, err := amrnb.NewDecoder(amrnb.WithMaxDuration(time.Minute)).DecodeAMR(t.Context(), bomb)
	require.ErrorIs(t, err, media.ErrAudioTooLong)
	pcm, err := amrnb.NewDecoder(amrnb.WithMaxDuration(2*time.Minute)).DecodeAMR(t.Context(), bomb)
	require.NoError(t, err)
	assert.Len(t, pcm, 6000*160)
}

// TestDecoderFrameKinds: every legal frame type decodes to 160 samples, whatever its payload —
// including damaged frames (Q = 0), other codecs' SID frames and random bits.
func TestDecoderFrameKinds(t *testing.T) {
	t.Parallel()
	enc, err := amrnb.NewEncoder()
	require.NoError(t, err)
	good, err := enc.EncodeAMR(t.Context(), speechLike(8000, 0.2, 5))
	require.NoError(t, err)
	in := append([]byte(nil), good...)
	for ft := 0; ft <= 15; ft++ {
		size := media.AMRFrameType(ft).Size()
		if size == 0 {
			continue
		}
		for _, q := range []byte{0, 4} {
			frame := make([]byte, size)
			frame[0] = byte(ft)<<3 | q
			for i := 1; i < size; i++ {
				frame[i] = byte(i*37 + ft)
			}
			in = append(in, frame...)
		}
	}
	in = append(in, good[6:]...)
	f, err := media.ParseAMR(in)
	require.NoError(t, err)
	pcm, err := amrnb.NewDecoder().DecodeAMR(t.Context(), in)
	require.NoError(t, err)
	assert.Len(t, pcm, len(f.Frames)*160)
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	enc, err := amrnb.NewEncoder()
	require.NoError(t, err)
	_, err = enc.EncodeAMR(ctx, tone(8000, 440, 1, 1000))
	require.ErrorIs(t, err, context.Canceled)
	amr, err := enc.EncodeAMR(t.Context(), tone(8000, 440, 1, 1000))
	require.NoError(t, err)
	_, err = amrnb.NewDecoder().DecodeAMR(ctx, amr)
	require.ErrorIs(t, err, context.Canceled)
}

// TestConcurrentUse: one Encoder and one Decoder shared by many goroutines give the same bytes as
// sequential use (each call has its own codec state). Run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	enc, err := amrnb.NewEncoder(amrnb.WithDTX(true))
	require.NoError(t, err)
	dec := amrnb.NewDecoder()
	sigs := make([][]int16, 6)
	want := make([][]byte, len(sigs))
	for i := range sigs {
		sigs[i] = speechLike(8000, 1, uint64(i))
		want[i], err = enc.EncodeAMR(t.Context(), sigs[i])
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for round := range 4 {
		for i := range sigs {
			wg.Go(func() {
				got, err := enc.EncodeAMR(t.Context(), sigs[i])
				assert.NoError(t, err)
				assert.Equal(t, want[i], got, "round %d signal %d", round, i)
				pcm, err := dec.DecodeAMR(t.Context(), got)
				assert.NoError(t, err)
				assert.Len(t, pcm, len(sigs[i]))
			})
		}
	}
	wg.Wait()
}

func FuzzDecodeAMR(f *testing.F) {
	f.Add([]byte("#!AMR\n\x3c" + string(make([]byte, 31)) + "\x7c\x44\x01\x02\x03\x04\x05"))
	f.Add([]byte("#!AMR\n\x4c\x01\x02\x03\x04\x05\x06\x54\x01\x02\x03\x04\x05"))
	dec := amrnb.NewDecoder(amrnb.WithMaxDuration(10 * time.Second))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, err := dec.DecodeAMR(t.Context(), b)
		if err != nil {
			return
		}
		d, err := media.AMRDuration(b)
		require.NoError(t, err)
		require.Len(t, pcm, int(d/media.AMRFrameDuration)*160)
	})
}

func BenchmarkEncode(b *testing.B) {
	sig := speechLike(8000, 10, 1)
	for _, mode := range []amrnb.Mode{amrnb.MR475, amrnb.MR122} {
		b.Run(fmt.Sprintf("mode%d_10s", mode), func(b *testing.B) {
			enc, err := amrnb.NewEncoder(amrnb.WithMode(mode))
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.EncodeAMR(b.Context(), sig); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, err := amrnb.NewEncoder()
	require.NoError(b, err)
	amr, err := enc.EncodeAMR(b.Context(), speechLike(8000, 10, 1))
	require.NoError(b, err)
	dec := amrnb.NewDecoder()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.DecodeAMR(b.Context(), amr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
}

// TestEncodeLeavesInputAlone: libopencore-amrnb's encoder high-pass filters and scales the buffer it
// is given in place; EncodeAMR must hand it a copy, never the caller's samples.
func TestEncodeLeavesInputAlone(t *testing.T) {
	t.Parallel()
	enc, err := amrnb.NewEncoder()
	require.NoError(t, err)
	for _, n := range []int{160, 8000, 8003} {
		sig := speechLike(8000, float64(n)/8000, 9)
		orig := append([]int16(nil), sig...)
		_, err := enc.EncodeAMR(t.Context(), sig)
		require.NoError(t, err)
		require.Equal(t, orig, sig)
	}
}
