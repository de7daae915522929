package media

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trim drops the first and last 10 % of x, where the filter sees the silence around the stream.
func trim(x []int16) []int16 { return x[len(x)/10 : len(x)-len(x)/10] }

func TestResampleKeepsPassBand(t *testing.T) {
	t.Parallel()
	for _, from := range []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 44101, 48000, 96000, 6000, 4000} {
		for _, freq := range []float64{300, 1000, 3000} {
			if freq >= 0.85*float64(min(from, 8000))/2 {
				continue
			}
			t.Run(fmt.Sprintf("%dHz_%gHz", from, freq), func(t *testing.T) {
				t.Parallel()
				in := tone(from, freq, 0.5, 10000)
				out, err := Resample(in, from, 8000)
				require.NoError(t, err)
				require.Len(t, out, int(math.Ceil(float64(len(in))*8000/float64(from))))
				got := amplitude(trim(out), 8000, freq)
				// Within 0.1 dB of the input: Kaiser ripple at 70 dB is ~0.003 dB.
				assert.InDelta(t, 0, db(got, 10000), 0.1, "amplitude %.1f", got)
			})
		}
	}
}

// TestResampleStopsAliasing is the reason the resampler exists: sample dropping would fold a 5 kHz
// tone at 44.1 kHz down to 3 kHz at 8 kHz, right in the voice band.
func TestResampleStopsAliasing(t *testing.T) {
	t.Parallel()
	for _, from := range []int{44100, 48000, 22050, 16000, 44101} {
		for _, freq := range []float64{4100, 4500, 5000, 7000, 10000, 15000, 20000} {
			if freq >= float64(from)/2 {
				continue
			}
			t.Run(fmt.Sprintf("%dHz_%gHz", from, freq), func(t *testing.T) {
				t.Parallel()
				in := tone(from, freq, 0.5, 10000)
				out, err := Resample(in, from, 8000)
				require.NoError(t, err)
				att := db(rms(in), rms(trim(out)))
				assert.GreaterOrEqual(t, att, 60.0, "attenuation %.1f dB", att)
			})
		}
	}
}

func TestResampleUpsamplingHasNoImages(t *testing.T) {
	t.Parallel()
	in := tone(8000, 1000, 0.5, 10000)
	out, err := Resample(in, 8000, 16000)
	require.NoError(t, err)
	require.Len(t, out, 2*len(in))
	assert.InDelta(t, 0, db(amplitude(trim(out), 16000, 1000), 10000), 0.1)
	// Zero-stuffing would leave an image at 8 kHz − 1 kHz = 7 kHz.
	assert.Less(t, amplitude(trim(out), 16000, 7000), 10000*0.001)
}

// TestResampleIsAligned checks there is no filter delay: output sample n is input time n·from/to, so
// the resampled tone is in phase with the same tone generated at 8 kHz.
func TestResampleIsAligned(t *testing.T) {
	t.Parallel()
	out, err := Resample(tone(44100, 1000, 0.5, 10000), 44100, 8000)
	require.NoError(t, err)
	want := tone(8000, 1000, 0.5, 10000)
	var num, da, db float64
	for i := range trim(out) {
		j := i + len(out)/10
		num += float64(out[j]) * float64(want[j])
		da += float64(out[j]) * float64(out[j])
		db += float64(want[j]) * float64(want[j])
	}
	assert.Greater(t, num/math.Sqrt(da*db), 0.9999)
}

func TestResampleDCAndClipping(t *testing.T) {
	t.Parallel()
	dc := make([]int16, 8000)
	for i := range dc {
		dc[i] = 1234
	}
	out, err := Resample(dc, 44100, 8000)
	require.NoError(t, err)
	for _, v := range trim(out) {
		require.InDelta(t, 1234, v, 1)
	}

	// A full-scale square wave overshoots (Gibbs); the output must clamp, never wrap around.
	sq := make([]int16, 44100)
	for i := range sq {
		if i/441%2 == 0 {
			sq[i] = math.MaxInt16
		} else {
			sq[i] = math.MinInt16
		}
	}
	out, err = Resample(sq, 44100, 8000)
	require.NoError(t, err)
	for n := 100; n < len(out)-100; n++ {
		// Centres of the half periods (50 Hz square: 80 output samples each).
		if n%160 == 40 {
			require.Greater(t, out[n], int16(20000), "sample %d", n)
		}
		if n%160 == 120 {
			require.Less(t, out[n], int16(-20000), "sample %d", n)
		}
	}
}

func TestResamplerStreamsLikeOneShot(t *testing.T) {
	t.Parallel()
	in := speechLike(44100, 1.3, 7)
	want, err := Resample(in, 44100, 8000)
	require.NoError(t, err)
	r, err := NewResampler(44100, 8000)
	require.NoError(t, err)
	for round := range 2 { // the second round checks Flush resets the stream
		var got []int16
		for k, chunk := 0, 1; k < len(in); chunk = chunk*3 + 1 {
			end := min(len(in), k+chunk%5000)
			got = r.Write(got, in[k:end])
			k = end
		}
		got = r.Flush(got)
		require.Equal(t, want, got, "round %d", round)
	}
}

func TestResampleIdentityAndEmpty(t *testing.T) {
	t.Parallel()
	in := speechLike(8000, 0.2, 1)
	out, err := Resample(in, 8000, 8000)
	require.NoError(t, err)
	assert.Equal(t, in, out)
	out, err = Resample(nil, 44100, 8000)
	require.NoError(t, err)
	assert.Empty(t, out)
	out, err = Resample([]int16{1000}, 44100, 8000)
	require.NoError(t, err)
	assert.Len(t, out, 1)
}

func TestResampleRejectsRates(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]int{{0, 8000}, {-1, 8000}, {999, 8000}, {44100, 768001}, {44100, 0}, {math.MaxInt, 8000}} {
		_, err := Resample([]int16{1, 2, 3}, r[0], r[1])
		assert.ErrorIs(t, err, ErrSampleRate, "%v", r)
	}
}

func BenchmarkResample(b *testing.B) {
	for _, from := range []int{44100, 48000, 16000} {
		in := speechLike(from, 10, 1)
		b.Run(fmt.Sprintf("%dto8000_10s", from), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(2 * len(in)))
			r, err := NewResampler(from, 8000)
			require.NoError(b, err)
			out := make([]int16, 0, 80001)
			for b.Loop() {
				out = r.Flush(r.Write(out[:0], in))
			}
			b.ReportMetric(10*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
		})
	}
}
