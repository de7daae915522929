package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// screenshotEnv names a path the browser test also copies its screenshot to (the test always
// writes one into its temporary directory and logs where).
const screenshotEnv = "WXKF_SANDBOX_SCREENSHOT"

// findChromium returns the Chromium the browser test drives: Debian's /usr/bin/chromium, or
// chromium on PATH. Without it the test fails: `make test` installs it.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (/usr/bin/chromium or on PATH): run `make test`, which installs it, or apt-get install -y chromium")
	}
	return p
}

// TestBrowser opens the page in headless Chromium and plays the customer: opens the chat (the
// welcome menu renders), sends a text (its echo renders), picks an image in the file input (the
// bot's image reply renders with pixels), asks for a long text (three labelled parts render),
// expires the access token (the log shows the 42001 and the bot still answers), and saves a
// screenshot of the whole page.
func TestBrowser(t *testing.T) {
	chromium := findChromium(t)
	base := startSandbox(t, config{})

	dir := t.TempDir()
	imgPath := filepath.Join(dir, "from-the-customer.png")
	require.NoError(t, os.WriteFile(imgPath, testPNG(t, 320, 200), 0o600))

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1440, 900),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, actions...), "browser step: %s", name)
	}
	// until polls a JavaScript predicate in the page.
	until := func(name, predicate string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		require.NoError(t, err, "waiting in the browser for: %s", name)
	}

	step("open the page",
		chromedp.EmulateViewport(1440, 960),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
		chromedp.WaitVisible(chromedp.ID("text")),
	)

	step("open the chat", chromedp.Click(chromedp.ID("enter")))
	until("the welcome menu", `document.querySelectorAll('.msg.welcome .menu .item').length === 5`)

	const text = "Hello from Chromium 你好 👋"
	step("type and send a text",
		chromedp.SendKeys(chromedp.ID("text"), text),
		chromedp.Click(chromedp.ID("send")),
	)
	until("the customer's bubble", fmt.Sprintf(`[...document.querySelectorAll('.msg.in .bubble')].some(b => b.textContent === %s)`, strconv.Quote(text)))
	until("the bot's echo", fmt.Sprintf(`[...document.querySelectorAll('.msg.out.bot .bubble')].some(b => b.textContent === %s)`, strconv.Quote(text)))

	// Each customer action waits a moment after the bot's last reply: a reply in the same second as
	// the customer's next message counts against that message's quota (send_time has a one-second
	// resolution), and this flow wants a full quota every time.
	pace := chromedp.Sleep(quotaPace)
	step("ask for a long text", pace, chromedp.Click(chromedp.CSS(`#chips button[data-cmd="long"]`)))
	until("three labelled parts", `['1/3','2/3','3/3'].every(l => [...document.querySelectorAll('.msg.out.bot .part')].some(p => p.textContent === l))`)

	step("pick an image", pace, chromedp.SetUploadFiles(chromedp.ID("image-input"), []string{imgPath}))
	until("the customer's image", `[...document.querySelectorAll('.msg.in img')].some(i => i.complete && i.naturalWidth === 320)`)
	until("the bot's image reply, loaded", `[...document.querySelectorAll('.msg.out.bot img')].some(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0)`)
	w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Math.max(...[...document.querySelectorAll('.msg.out.bot img')].map(i => i.naturalWidth))`))
	require.NoError(t, err)
	require.Equal(t, 320, w, "the bot's picture is the customer's, fitted and re-uploaded")

	step("send a voice message", pace, chromedp.Click(chromedp.ID("send-voice")))
	until("the bot's voice reply", `document.querySelectorAll('.msg.out.bot .voice').length === 1`)

	step("expire the access token", chromedp.Click(chromedp.CSS(`button[data-fault="expire_token"]`)))
	step("send after the expiry", pace,
		chromedp.SendKeys(chromedp.ID("text"), "still there?"),
		chromedp.Click(chromedp.ID("send")),
	)
	until("the 42001 in the live log", `[...document.querySelectorAll('#log .line.is-error .code')].some(c => c.textContent === 'errcode 42001')`)
	until("the bot answers anyway", `[...document.querySelectorAll('.msg.out.bot .bubble')].some(b => b.textContent === 'still there?')`)
	until("quota shown", `document.querySelector('#quota-n').textContent === '4 / 5'`)
	until("the OpenTelemetry card", `document.querySelector('#m-p99').textContent.endsWith(' ms') && `+
		`[...document.querySelectorAll('#m-sends .code')].some(c => c.textContent.startsWith('ok ×')) && `+
		`document.querySelector('#m-lag').textContent.endsWith(' s')`)

	// Scroll the chat to its end, like a customer reading along, and let animations settle.
	step("settle",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#chat').scrollTop = 1e9; document.querySelector('#log').scrollTop = 1e9`),
		chromedp.Sleep(700*time.Millisecond),
	)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.Greater(t, len(shot), 10_000)
	path := filepath.Join(t.TempDir(), "sandbox.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s", path)
	if dst := os.Getenv(screenshotEnv); dst != "" {
		require.NoError(t, os.WriteFile(dst, shot, 0o644))
		t.Logf("screenshot copied to %s", dst)
	}
}
