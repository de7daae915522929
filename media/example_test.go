package media_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	"github.com/wxkf/wxkf/media"
)

func ExampleSplitText() {
	reply := strings.Repeat("第一段。", 3) + "\n\n" + strings.Repeat("Second paragraph. ", 2)
	for i, part := range media.SplitText(reply, 40) { // use media.MaxTextBytes (2048) for WeCom
		fmt.Printf("%d: %q\n", i, part)
	}
	// Output:
	// 0: "第一段。第一段。第一段。\n\n"
	// 1: "Second paragraph. Second paragraph. "
}

func ExampleFitText() {
	// Only two messages left of the customer's 5-message quota.
	parts, truncated := media.FitText(strings.Repeat("All work and no play. ", 10), 60, 2, "")
	fmt.Println(len(parts), truncated)
	fmt.Printf("%q\n", parts[1])
	// Output:
	// 2 true
	// "All work and no play. All work and no play.…"
}

func ExampleFitImage() {
	// A 1600×1200 PNG that is too big for the limit at hand.
	img := image.NewRGBA(image.Rect(0, 0, 1600, 1200))
	for y := 0; y < 1200; y++ {
		for x := 0; x < 1600; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var src bytes.Buffer
	if err := png.Encode(&src, img); err != nil {
		panic(err)
	}
	limit := src.Len() / 2 // use media.MaxImageBytes (10 MB) for WeCom
	out, format, err := media.FitImage(src.Bytes(), limit)
	if err != nil {
		panic(err)
	}
	fmt.Println(format, len(out) <= limit, media.Check(media.KindImage, out) == nil)
	// Output: jpeg true true
}

func ExampleCheck() {
	err := media.Check(media.KindFile, []byte("tiny"))
	fmt.Println(err)
	// Output: media: file: file must be larger than 5 bytes (got 4 bytes)
}
