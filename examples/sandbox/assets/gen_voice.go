//go:build ignore

// gen_voice writes voice-sample.amr, the voice message the sandbox's customer can send and the
// demo bot answers "voice" with: a 2-second four-note chime, encoded to AMR-NB 12.2 kbit/s with
// media/amrnb (cgo, libopencore-amrnb). The sandbox itself only embeds the result and stays pure
// Go. Run from the repository root:
//
//	go run ./examples/sandbox/assets/gen_voice.go
package main

import (
	"context"
	"log"
	"math"
	"os"

	"github.com/wxkf/wxkf/media/amrnb"
)

func main() {
	const rate = 8000
	notes := []float64{523.25, 659.25, 783.99, 1046.50} // C5 E5 G5 C6
	const step, ring = 0.32, 1.0                        // seconds between notes, decay length
	total := int((step*float64(len(notes)-1) + ring) * rate)
	mix := make([]float64, total)
	for i, f := range notes {
		start := int(step * float64(i) * rate)
		for n := 0; start+n < total && n < int(ring*rate); n++ {
			t := float64(n) / rate
			env := math.Exp(-4*t) * math.Min(1, t/0.01)
			v := math.Sin(2*math.Pi*f*t) + 0.35*math.Sin(4*math.Pi*f*t) + 0.12*math.Sin(6*math.Pi*f*t)
			mix[start+n] += env * v
		}
	}
	peak := 0.0
	for _, v := range mix {
		peak = math.Max(peak, math.Abs(v))
	}
	pcm := make([]int16, total)
	for i, v := range mix {
		pcm[i] = int16(v / peak * 0.7 * math.MaxInt16)
	}
	enc, err := amrnb.NewEncoder()
	if err != nil {
		log.Fatal(err)
	}
	amr, err := enc.EncodeAMR(context.Background(), pcm)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("examples/sandbox/assets/voice-sample.amr", amr, 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("wrote %d bytes, %d samples", len(amr), len(pcm))
}
