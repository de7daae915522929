package media

import (
	"errors"
	"fmt"
	"math"
)

// Sample rates the resampler and the audio decoders accept.
const (
	MinSampleRate = 1000
	MaxSampleRate = 768000
)

// VoiceSampleRate is the sample rate of AMR-NB: 8 kHz, 160 samples per 20 ms frame (3GPP TS 26.101).
const VoiceSampleRate = 8000

// ErrSampleRate reports a sample rate outside [MinSampleRate, MaxSampleRate].
var ErrSampleRate = errors.New("media: unsupported sample rate")

// Filter design of the resampler. The low-pass keeps everything below passFraction of the lower
// Nyquist frequency and stops everything above that Nyquist frequency with stopAttenuation dB: for
// 44.1 kHz → 8 kHz the pass band ends at 3.4 kHz (the telephone band AMR-NB is built for) and 4 kHz
// and above are attenuated by ≥ 70 dB, so nothing aliases back into the voice band.
const (
	passFraction    = 0.85
	stopAttenuation = 70.0 // dB
	// maxPhases bounds the polyphase table for awkward ratios (44101 → 8000 has 8000 exact phases);
	// beyond it phases are rounded down to the nearest of maxPhases, a timing error below 1/1024 of an
	// input sample (−70 dB at the top of the pass band).
	maxPhases = 1024
)

// Resampler converts 16-bit mono PCM from one sample rate to another with a band-limited polyphase
// FIR filter (Kaiser-windowed sinc), so content above the new Nyquist frequency is filtered out
// instead of aliasing as it would with sample dropping. Output sample n is aligned with input time
// n·from/to (no delay). A Resampler is stateful and streams: feed it with Write, finish with Flush.
// It is not safe for concurrent use.
type Resampler struct {
	from, to int
	l, m     int // to/g and from/g for g = gcd(from, to)
	phases   int
	taps     int // taps per phase, 2·half
	half     int
	table    []float32 // phases × taps; row p is the filter for output time i + p/phases

	buf  []float32 // input samples buf[k] = x[base+k]
	base int64     // input index of buf[0]
	inN  int64     // input samples received
	i    int64     // integer input position of the next output
	rem  int       // fractional position of the next output, in 1/l input samples
	outN int64     // output samples produced
}

// NewResampler returns a Resampler from rate from to rate to (Hz, each within
// [MinSampleRate, MaxSampleRate]); it fails with ErrSampleRate otherwise.
func NewResampler(from, to int) (*Resampler, error) {
	for _, r := range []int{from, to} {
		if r < MinSampleRate || r > MaxSampleRate {
			return nil, fmt.Errorf("%w: %d Hz (want %d to %d Hz)", ErrSampleRate, r, MinSampleRate, MaxSampleRate)
		}
	}
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, l: to / g, m: from / g}
	if from == to {
		return r, nil
	}
	r.phases = min(r.l, maxPhases)

	// Design the prototype low-pass in units of input samples.
	nyq := float64(min(from, to)) / 2
	pass := passFraction * nyq
	cutoff := (pass + nyq) / 2 / float64(from)               // cycles per input sample
	transition := 2 * math.Pi * (nyq - pass) / float64(from) // radians per input sample
	// Kaiser's formulas for length and shape (Oppenheim & Schafer §7.6).
	n := int(math.Ceil((stopAttenuation - 7.95) / (2.285 * transition)))
	r.half = max(n/2+1, 2)
	r.taps = 2 * r.half
	beta := 0.1102 * (stopAttenuation - 8.7)
	i0beta := besselI0(beta)

	r.table = make([]float32, r.phases*r.taps)
	row := make([]float64, r.taps)
	for p := range r.phases {
		frac := float64(p) / float64(r.phases)
		sum := 0.0
		for k := range r.taps {
			// Output time i+frac, input sample i-half+1+k: distance t.
			t := frac + float64(r.half-1-k)
			x := t / float64(r.half)
			w := 0.0
			if x > -1 && x < 1 {
				w = besselI0(beta*math.Sqrt(1-x*x)) / i0beta
			}
			row[k] = 2 * cutoff * sinc(2*cutoff*t) * w
			sum += row[k]
		}
		for k := range r.taps {
			// Normalise every phase to unit gain at DC so a constant stays constant.
			r.table[p*r.taps+k] = float32(row[k] / sum)
		}
	}
	return r, nil
}

// Write resamples in and appends the output samples that are complete so far to out, returning it.
// The filter looks ahead by half its length, so the last few outputs of a stream come from Flush.
func (r *Resampler) Write(out, in []int16) []int16 {
	if r.from == r.to {
		r.inN += int64(len(in))
		r.outN += int64(len(in))
		return append(out, in...)
	}
	for _, s := range in {
		r.buf = append(r.buf, float32(s))
	}
	r.inN += int64(len(in))
	return r.run(out, r.inN)
}

// Flush emits the remaining outputs, treating the input after the last sample as silence, and resets
// the Resampler for a new stream. In total a stream of n inputs yields ceil(n·to/from) outputs.
func (r *Resampler) Flush(out []int16) []int16 {
	if r.from != r.to {
		want := (r.inN*int64(r.l) + int64(r.m) - 1) / int64(r.m)
		need := want - r.outN
		if need > 0 {
			// Pad with silence up to the look-ahead of the last output.
			last := (want - 1) * int64(r.m) / int64(r.l)
			if pad := int(last+int64(r.half)+1-r.base) - len(r.buf); pad > 0 {
				r.buf = append(r.buf, make([]float32, pad)...)
			}
			out = r.runN(out, need)
		}
	}
	r.buf, r.base, r.inN, r.i, r.rem, r.outN = r.buf[:0], 0, 0, 0, 0, 0
	return out
}

// span computes outputs [n0, n1) of a whole stream x independently of the Resampler's state, from
// in = x[inStart:inStart+len(in)], taking x as silence before 0 and after the end of in. in must
// cover every input those outputs see (from inStart = 0, or from the look-behind of output n0), so
// that pieces of a stream resampled apart are bit-identical to the stream resampled at once.
func (r *Resampler) span(out, in []int16, inStart, n0, n1 int64) []int16 {
	if r.from == r.to {
		return append(out, in[n0-inStart:n1-inStart]...)
	}
	s := Resampler{from: r.from, to: r.to, l: r.l, m: r.m, phases: r.phases, taps: r.taps, half: r.half, table: r.table}
	s.base = inStart
	s.i, s.rem = n0*int64(r.m)/int64(r.l), int(n0*int64(r.m)%int64(r.l))
	last := (n1 - 1) * int64(r.m) / int64(r.l)
	s.buf = make([]float32, max(len(in), int(last+int64(r.half)+1-inStart)))
	for k, v := range in {
		s.buf[k] = float32(v)
	}
	return s.runN(out, n1-n0)
}

// run produces outputs while their look-ahead is within the first avail input samples.
func (r *Resampler) run(out []int16, avail int64) []int16 {
	var n int64
	// Output at position i needs inputs up to i+half.
	i, rem := r.i, r.rem
	for i+int64(r.half) < avail {
		n++
		rem += r.m % r.l
		i += int64(r.m / r.l)
		if rem >= r.l {
			rem -= r.l
			i++
		}
	}
	return r.runN(out, n)
}

// runN produces exactly n outputs; the buffer must hold their inputs.
func (r *Resampler) runN(out []int16, n int64) []int16 {
	stepI, stepRem := int64(r.m/r.l), r.m%r.l
	buf, taps := r.buf, r.taps
	for ; n > 0; n-- {
		// Inputs before 0 (the start of the stream) are silence.
		start := int(r.i-r.base) - r.half + 1
		p := r.rem
		if r.phases != r.l {
			p = int(int64(r.rem) * int64(r.phases) / int64(r.l))
		}
		coef := r.table[p*taps : (p+1)*taps]
		var acc float32
		if start >= 0 {
			acc = dot(buf[start:start+taps], coef)
		} else {
			acc = dot(buf[:taps+start], coef[-start:])
		}
		out = append(out, clamp16(acc))
		r.outN++
		r.rem += stepRem
		r.i += stepI
		if r.rem >= r.l {
			r.rem -= r.l
			r.i++
		}
	}
	// Drop inputs no future output needs.
	if drop := int(r.i-r.base) - r.half + 1; drop > 0 {
		drop = min(drop, len(r.buf))
		r.buf = r.buf[:copy(r.buf, r.buf[drop:])]
		r.base += int64(drop)
	}
	return out
}

// Resample converts 16-bit mono PCM from rate from to rate to with a Resampler: ceil(len·to/from)
// samples out, content above the lower Nyquist frequency filtered out.
func Resample(pcm []int16, from, to int) ([]int16, error) {
	r, err := NewResampler(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, int(int64(len(pcm))*int64(to)/int64(from))+1)
	out = r.Write(out, pcm)
	return r.Flush(out), nil
}

// dot is the inner product of equally long a and b.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

func clamp16(v float32) int16 {
	switch {
	case v >= math.MaxInt16:
		return math.MaxInt16
	case v <= math.MinInt16:
		return math.MinInt16
	case v >= 0:
		return int16(v + 0.5)
	default:
		return int16(v - 0.5)
	}
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by its power series.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
