package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// sampleVoice is a 2-second AMR-NB chime (assets/gen_voice.go made it with media/amrnb): the
// voice the customer can send, and what the bot answers "voice" with.
//
//go:embed assets/voice-sample.amr
var sampleVoice []byte

// botPicture draws the picture the bot sends for "image": a gradient card with the sandbox's
// name, made in pure Go (no assets, no fonts to ship), encoded as PNG.
func botPicture(caption string) []byte {
	const w, h = 640, 360
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			t := (float64(x)/w + float64(y)/h) / 2
			r := lerp(7, 79, t)
			g := lerp(193, 70, t)
			b := lerp(96, 229, t)
			img.SetRGBA(x, y, color.RGBA{r, g, b, 255})
		}
	}
	// Soft bubbles.
	for _, c := range []struct{ x, y, r float64 }{{520, 70, 120}, {90, 300, 90}, {380, 330, 60}} {
		for y := max(0, int(c.y-c.r)); y < min(h, int(c.y+c.r)); y++ {
			for x := max(0, int(c.x-c.r)); x < min(w, int(c.x+c.r)); x++ {
				d := math.Hypot(float64(x)-c.x, float64(y)-c.y)
				if d < c.r {
					p := img.RGBAAt(x, y)
					a := 0.16 * (1 - d/c.r)
					img.SetRGBA(x, y, color.RGBA{lerp(p.R, 255, a), lerp(p.G, 255, a), lerp(p.B, 255, a), 255})
				}
			}
		}
	}
	drawText(img, "wxkf", 48, 70, 9)
	drawText(img, caption, 52, 210, 3)
	drawText(img, "WeCom KF SDK for Go", 52, 270, 2)
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

func lerp(a, b uint8, t float64) uint8 {
	return uint8(math.Round(float64(a) + (float64(b)-float64(a))*t))
}

// drawText writes s in white at (x, y), the 7×13 basic font scaled up by scale.
func drawText(dst *image.RGBA, s string, x, y, scale int) {
	face := basicfont.Face7x13
	width := font.MeasureString(face, s).Ceil()
	if width == 0 {
		return
	}
	small := image.NewRGBA(image.Rect(0, 0, width, 13))
	d := font.Drawer{Dst: small, Src: image.White, Face: face, Dot: fixed.P(0, 11)}
	d.DrawString(s)
	r := image.Rect(x, y, x+width*scale, y+13*scale)
	xdraw.NearestNeighbor.Scale(dst, r, small, small.Bounds(), xdraw.Over, nil)
}

// helpText is the bot's answer to "help".
func helpText(llm bool) string {
	var b strings.Builder
	b.WriteString("wxkf demo bot — what I can do:\n\n")
	if llm {
		b.WriteString("• anything else → answered by the LLM, streamed into replies that fit the 5-message quota\n")
	} else {
		b.WriteString("• any text → echoed back\n")
	}
	b.WriteString(`• a picture → downloaded (media/get), fitted and sent back (media/upload + image)
• a voice or file → sent back the same way
• long → a 5000-byte text, split into 2048-byte parts
• image / voice / file / menu → one of each from me
• flood → I try 7 messages; WeCom allows 5 per customer message
• quota → how many messages I may still send you
• human → I hand you to a human servicer (转人工)
• help → this list`)
	return b.String()
}

// longText is about 5000 bytes in numbered paragraphs of mixed Chinese and English: Replier.Text
// splits it at paragraph ends into parts of at most 2048 bytes, never inside a character.
func longText() string {
	var b strings.Builder
	b.WriteString("Here is a long answer (about 5000 bytes). WeCom takes at most 2048 bytes per text message, so the Replier splits it at paragraph, line, sentence or word ends — never inside a UTF-8 character or an emoji.\n\n")
	for i := 1; b.Len() < 5000; i++ {
		fmt.Fprintf(&b, "%d. 微信客服的每条文本消息最多 2048 字节。wxkf splits long replies on UTF-8 and grapheme boundaries 🧩, preferring the end of a paragraph. 第 %d 段：内容完整，顺序不变。\n\n", i, i)
	}
	return strings.TrimSpace(b.String())
}

// fileText is the file the bot sends for "file".
func fileText() []byte {
	return []byte(`wxkf sandbox — a file sent through the WeCom KF API

1. The bot uploaded these bytes with cgi-bin/media/upload?type=file (at most 20 MB, §9).
2. It sent msgtype "file" with the media_id it got back (valid 3 days).
3. Your page downloads it from the fake WeCom's media store.
`)
}
