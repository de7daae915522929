package amrnb_test

import (
	"context"
	"fmt"
	"math"

	"github.com/wxkf/wxkf/media"
	"github.com/wxkf/wxkf/media/amrnb"
)

// A TTS reply as WAV becomes WeCom voice: AMR-NB pieces of at most 60 s and 2 MB (doc 96484), each
// ready for cgi-bin/media/upload?type=voice.
func ExampleEncoder() {
	ctx := context.Background()
	// 75 s of a 16 kHz tone stands in for the TTS output.
	pcm := make([]int16, 75*16000)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	wav := media.EncodeWAV(pcm, 16000)

	enc, err := amrnb.NewEncoder()
	if err != nil {
		panic(err)
	}
	pieces, err := media.ToVoice(ctx, wav, enc)
	if err != nil {
		panic(err)
	}
	for _, p := range pieces {
		d, _ := media.AMRDuration(p)
		fmt.Println(d, media.CheckVoice(p))
	}
	// Output:
	// 1m0s <nil>
	// 15s <nil>
}

// A voice message from sync_msg (AMR-NB) becomes a WAV for a speech-recognition service.
func ExampleDecoder_DecodeToWAV() {
	ctx := context.Background()
	enc, _ := amrnb.NewEncoder()
	voice, _ := enc.EncodeAMR(ctx, make([]int16, 8000)) // stands in for the downloaded media

	wav, err := amrnb.NewDecoder().DecodeToWAV(ctx, voice)
	if err != nil {
		panic(err)
	}
	pcm, rate, _ := media.DecodeWAV(wav)
	fmt.Println(len(pcm), rate)
	// Output: 8000 8000
}
