package amrnb_test

import (
	"math"
	"math/rand/v2"
)

// Signal generators and measurements for the codec tests (8 kHz unless stated).

// tone returns dur seconds of a sine of freq Hz and peak amp at rate Hz.
func tone(rate int, freq, dur, amp float64) []int16 {
	out := make([]int16, int(float64(rate)*dur))
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// speechLike returns dur seconds of a synthetic voiced signal at rate Hz: a 120–180 Hz glide with
// harmonics shaped by formant-like resonances near 600 and 1800 Hz, 4 Hz syllable modulation, a 60 ms
// noise burst every 0.5 s and a 300 ms pause every 1.5 s; deterministic for a seed.
func speechLike(rate int, dur float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]int16, int(float64(rate)*dur))
	phase := 0.0
	for i := range out {
		t := float64(i) / float64(rate)
		if math.Mod(t, 1.5) >= 1.2 {
			continue
		}
		f0 := 150 + 30*math.Sin(2*math.Pi*0.7*t)
		phase += 2 * math.Pi * f0 / float64(rate)
		// Harmonics by rotation: sin(hφ) from sin((h−1)φ), cheaper than 20 calls to math.Sin.
		s1, c1 := math.Sincos(phase)
		sh, ch := s1, c1
		v := 0.0
		for h := 1; h <= 20; h++ {
			fh := f0 * float64(h)
			if fh > float64(rate)/2-200 {
				break
			}
			// Formant-ish envelope: peaks near 600 Hz and 1800 Hz.
			a, b := (fh-600)/200, (fh-1800)/300
			v += (1/(1+a*a) + 0.5/(1+b*b) + 0.02) * sh
			sh, ch = sh*c1+ch*s1, ch*c1-sh*s1
		}
		s := 5000 * (0.55 + 0.45*math.Sin(2*math.Pi*4*t)) * v
		if math.Mod(t, 0.5) < 0.06 {
			s = 3000 * (rng.Float64()*2 - 1)
		}
		out[i] = int16(max(-32768, min(32767, math.Round(s))))
	}
	return out
}

// bestCorrelation is the highest normalised cross-correlation of y against x over lags 0..maxLag
// (y delayed relative to x, as a codec delays), and that lag.
func bestCorrelation(x, y []int16, maxLag int) (float64, int) {
	best, bestLag := -1.0, 0
	for lag := 0; lag <= maxLag; lag++ {
		n := min(len(x), len(y)-lag)
		var xy, xx, yy float64
		for i := range n {
			a, b := float64(x[i]), float64(y[i+lag])
			xy += a * b
			xx += a * a
			yy += b * b
		}
		if xx == 0 || yy == 0 {
			continue
		}
		if c := xy / math.Sqrt(xx*yy); c > best {
			best, bestLag = c, lag
		}
	}
	return best, bestLag
}

// amplitude measures the peak amplitude of the freq Hz component of x sampled at rate.
func amplitude(x []int16, rate int, freq float64) float64 {
	var s, c float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s += float64(v) * math.Sin(w)
		c += float64(v) * math.Cos(w)
	}
	return 2 * math.Hypot(s, c) / float64(len(x))
}
