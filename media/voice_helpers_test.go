package media

import (
	"math"
	"math/rand/v2"
)

// Signal generators and measurements shared by the voice tests.

// tone returns dur seconds of a sine of freq Hz and peak amp at rate Hz.
func tone(rate int, freq, dur, amp float64) []int16 {
	n := int(float64(rate) * dur)
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// speechLike returns dur seconds of a synthetic voiced signal at rate Hz: a 120–180 Hz glide with
// harmonics shaped by two formant-like resonances, syllable-rate amplitude modulation, noise bursts
// ("fricatives") and 300 ms pauses, deterministic for a seed.
func speechLike(rate int, dur float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 1))
	n := int(float64(rate) * dur)
	out := make([]int16, n)
	phase := 0.0
	for i := range out {
		t := float64(i) / float64(rate)
		// 1.5 s "sentences": 1.2 s of speech then 0.3 s of silence.
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
		env := 0.55 + 0.45*math.Sin(2*math.Pi*4*t) // ~4 syllables a second
		s := 5000 * env * v
		if math.Mod(t, 0.5) < 0.06 { // a short noise burst every half second
			s = 3000 * (rng.Float64()*2 - 1)
		}
		out[i] = int16(max(-32768, min(32767, math.Round(s))))
	}
	return out
}

// amplitude measures the peak amplitude of the freq Hz component of x (sampled at rate) by
// correlating with a sine and a cosine.
func amplitude(x []int16, rate int, freq float64) float64 {
	var s, c float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s += float64(v) * math.Sin(w)
		c += float64(v) * math.Cos(w)
	}
	return 2 * math.Hypot(s, c) / float64(len(x))
}

// rms is the root mean square of x.
func rms(x []int16) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// db is 20·log10(a/b).
func db(a, b float64) float64 { return 20 * math.Log10(a/b) }
