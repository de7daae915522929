//go:build ignore

// mp3_gen regenerates the MP3 test fixtures from synthetic signals with the lame encoder:
//
//	cd media/testdata && go run mp3_gen.go
//
// mp3_tones_44k_stereo.mp3: 2 s, 44.1 kHz joint stereo, 128 kbit/s CBR, no bit reservoir (--nores) and
// no Xing/LAME tag (-t), so copies of it can be concatenated frame by frame into longer streams. Both
// channels carry a 1 kHz sine (peak 8000) for the first second and a 2.5 kHz sine for the second.
// mp3_tone_16k_mono.mp3: 1 s of a 440 Hz sine (peak 8000), MPEG-2 16 kHz mono, 32 kbit/s.
// mp3_tone_8k_mono.mp3: 0.5 s of a 440 Hz sine, MPEG-2.5 8 kHz mono, 16 kbit/s (go-mp3 cannot decode it).
// mp3_reservoir_44k_stereo.mp3: 3 s, 44.1 kHz joint stereo, 64 kbit/s CBR with the bit reservoir:
// 250 ms of noise (different in each channel) alternating with 250 ms of a quiet 700 Hz sine, so the
// encoder saves bits in the quiet parts and spends them on the noise (frames point back into earlier
// frames' data, which chunked decoding must handle).
package main

import (
	"encoding/binary"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"

	"github.com/wxkf/wxkf/media"
)

func sine(rate int, freq float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(8000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// stereoWAV duplicates mono into both channels of a 16-bit WAV.
func stereoWAV(mono []int16, rate int) []byte {
	w := media.EncodeWAV(nil, rate)
	binary.LittleEndian.PutUint16(w[22:], 2)
	binary.LittleEndian.PutUint32(w[28:], uint32(rate*4))
	binary.LittleEndian.PutUint16(w[32:], 4)
	for _, s := range mono {
		w = binary.LittleEndian.AppendUint16(w, uint16(s))
		w = binary.LittleEndian.AppendUint16(w, uint16(s))
	}
	binary.LittleEndian.PutUint32(w[40:], uint32(len(mono)*4))
	binary.LittleEndian.PutUint32(w[4:], uint32(len(w)-8))
	return w
}

// burstsWAV is the interleaved stereo WAV of the reservoir fixture.
func burstsWAV() []byte {
	const rate = 44100
	rng := rand.New(rand.NewPCG(5, 6))
	w := media.EncodeWAV(nil, rate)
	binary.LittleEndian.PutUint16(w[22:], 2)
	binary.LittleEndian.PutUint32(w[28:], rate*4)
	binary.LittleEndian.PutUint16(w[32:], 4)
	for i := range 3 * rate {
		var l, r float64
		if i/(rate/4)%2 == 0 {
			l, r = 6000*(rng.Float64()*2-1), 6000*(rng.Float64()*2-1)
		} else {
			l = 500 * math.Sin(2*math.Pi*700*float64(i)/rate)
			r = l
		}
		w = binary.LittleEndian.AppendUint16(w, uint16(int16(l)))
		w = binary.LittleEndian.AppendUint16(w, uint16(int16(r)))
	}
	binary.LittleEndian.PutUint32(w[40:], uint32(len(w)-44))
	binary.LittleEndian.PutUint32(w[4:], uint32(len(w)-8))
	return w
}

func lame(wav []byte, out string, args ...string) {
	if err := os.WriteFile("tmp.wav", wav, 0o644); err != nil {
		log.Fatal(err)
	}
	defer os.Remove("tmp.wav")
	cmd := exec.Command("lame", append(append([]string{"--quiet", "-t"}, args...), "tmp.wav", out)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatal(err)
	}
}

func main() {
	tones := append(sine(44100, 1000, 44100), sine(44100, 2500, 44100)...)
	lame(stereoWAV(tones, 44100), "mp3_tones_44k_stereo.mp3", "-b", "128", "--cbr", "--nores", "-m", "j")
	lame(media.EncodeWAV(sine(16000, 440, 16000), 16000), "mp3_tone_16k_mono.mp3", "-b", "32", "--cbr", "-m", "m")
	lame(media.EncodeWAV(sine(8000, 440, 4000), 8000), "mp3_tone_8k_mono.mp3", "-b", "16", "--cbr", "-m", "m")
	lame(burstsWAV(), "mp3_reservoir_44k_stereo.mp3", "-b", "64", "--cbr", "-m", "j", "--resample", "44.1")
}
