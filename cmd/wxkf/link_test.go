package main

import (
	"image"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeQR reads a QR code with an independent decoder (gozxing, a port of ZXing).
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	require.NoError(t, err)
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	require.NoError(t, err)
	return res.GetText()
}

// terminalQR turns the half-block drawing link prints back into an image: each character is a
// module wide and two modules high (▀ upper half lit, ▄ lower half lit; lit is light unless
// inverted).
func terminalQR(t *testing.T, drawing string, inverted bool) image.Image {
	t.Helper()
	lines := strings.Split(strings.TrimRight(drawing, "\n"), "\n")
	w := len([]rune(lines[0]))
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, (w+8)*scale, (2*len(lines)+8)*scale))
	for i := range img.Pix {
		img.Pix[i] = 255 // a white margin around, as on a screen
	}
	for y, l := range lines {
		require.Len(t, []rune(l), w, "every row of the drawing is as wide")
		for x, r := range []rune(l) {
			var top, bottom bool // lit halves
			switch r {
			case '█':
				top, bottom = true, true
			case '▀':
				top = true
			case '▄':
				bottom = true
			case ' ':
			default:
				t.Fatalf("unexpected %q in the QR drawing", r)
			}
			for half, lit := range []bool{top, bottom} {
				light := lit != inverted
				c := color.Gray{Y: 0}
				if light {
					c = color.Gray{Y: 255}
				}
				for dy := range scale {
					for dx := range scale {
						img.SetGray((x+4)*scale+dx, (2*y+half+4)*scale+dy, c)
					}
				}
			}
		}
	}
	return img
}

func TestLink(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	pngPath := filepath.Join(t.TempDir(), "qr.png")
	r := f.run("link", "--scene", "poster_1", "--scene-param", "门店 A&B", "--png", pngPath)
	f.noSecrets(t, r)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)

	lines := strings.Split(r.stdout, "\n")
	assert.Equal(t, "kftest  "+f.srv.OpenKfID(), lines[0])
	link := lines[1]
	u, err := url.Parse(link)
	require.NoError(t, err)
	assert.Equal(t, "work.weixin.qq.com", u.Host)
	assert.True(t, strings.HasPrefix(u.Path, "/kfid/"), link)
	assert.Equal(t, "门店 A&B", u.Query().Get("scene_param"), "scene_param is appended, encoded")
	assert.NotEmpty(t, u.Query().Get("enc_scene"), "the scene went to add_contact_way")
	assert.Contains(t, r.stdout, "QR code written to "+pngPath+"\n")

	// The PNG scans to the link.
	fh, err := os.Open(pngPath)
	require.NoError(t, err)
	defer fh.Close()
	img, err := png.Decode(fh)
	require.NoError(t, err)
	assert.Equal(t, qrPNGSize, img.Bounds().Dx())
	assert.Equal(t, link, decodeQR(t, img))

	// So does the drawing in the terminal, as printed.
	drawing := strings.SplitN(r.stdout, "\n\n", 2)[1]
	drawing = drawing[:strings.Index(drawing, "QR code written")]
	assert.Equal(t, link, decodeQR(t, terminalQR(t, drawing, false)))

	// --invert draws for a light background; it scans the same.
	r = f.run("link", "--invert")
	require.Equal(t, exitOK, r.code)
	link = strings.Split(r.stdout, "\n")[1]
	assert.Equal(t, link, decodeQR(t, terminalQR(t, strings.SplitN(r.stdout, "\n\n", 2)[1], true)))
}

func TestLinkSeveralAccounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	second := f.srv.AddAccount("售后")
	dir := t.TempDir()
	r := f.run("link", "--no-qr", "--png", filepath.Join(dir, "qr.png"))
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.NotContains(t, r.stdout, "█")
	for _, id := range []string{f.srv.OpenKfID(), second} {
		assert.Contains(t, r.stdout, "QR code written to "+filepath.Join(dir, "qr-"+id+".png"))
		_, err := os.Stat(filepath.Join(dir, "qr-"+id+".png"))
		assert.NoError(t, err)
	}

	r = f.run("link", "--kf", second, "--no-qr")
	require.Equal(t, exitOK, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "售后  "+second+"\n"), r.stdout)

	r = f.run("link", "--kf", "wkNope")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ no account wkNope among the 2 this app sees")

	r = f.run("link", "--scene", "not a scene!")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "✘ kftest "+f.srv.OpenKfID()+": ")
}

func TestKeygen(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		r := runWxkf("keygen")
		require.Equal(t, exitOK, r.code)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 2, r.stdout)
		token, ok := strings.CutPrefix(lines[0], "WECHATCOM_KF_TOKEN=")
		require.True(t, ok, lines[0])
		key, ok := strings.CutPrefix(lines[1], "WECHATCOM_KF_AES_KEY=")
		require.True(t, ok, lines[1])
		require.False(t, seen[key], "a repeated key")
		seen[key] = true

		// The pair works as a bot's configuration: config loads it and crypto accepts it.
		dir := t.TempDir()
		writeJSON(t, filepath.Join(dir, "config.json"), map[string]string{
			"wechatcom_corp_id": "ww7e3a9c0b5d1f2468", "wechatcom_kf_secret": "s",
			"wechatcom_kf_token": token, "wechatcom_kf_aes_key": key,
		})
		_, err := loadConfig(dir)
		require.NoError(t, err)
	}
	r := runWxkf("keygen")
	assert.Contains(t, r.stderr, "应用管理 → 应用 → your app → 接收消息 → 设置API接收")

	r = runWxkf("keygen", "--json")
	require.Equal(t, exitOK, r.code)
	assert.Regexp(t, `^\{\n  "wechatcom_kf_aes_key": "[A-Za-z0-9]{43}",\n  "wechatcom_kf_token": "[A-Za-z0-9]{32}"\n\}\n$`, r.stdout)
}
