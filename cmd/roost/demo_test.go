package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium, or fails the test with the install
// hint: the demo page is tested in a real browser or not at all.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("chromium not found: install chromium (make test does it)")
	return ""
}

// TestDemoPageInHeadlessChromium opens the demo page in a real browser,
// connects, joins a channel, publishes through the HTTP API and waits for
// the message to show on the page.
func TestDemoPageInHeadlessChromium(t *testing.T) {
	t.Parallel()
	browser := chromiumPath(t)
	p := startRoost(t, nil)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancel()
	// Start the browser without a deadline (a deadline on the first run
	// would bound the browser's life); later steps get one each.
	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/?user=alice"))); err != nil {
		t.Fatalf("open the demo page: %v", err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			log, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("log")))
			t.Fatalf("%s: %v\npage log:\n%s", what, err, log)
		}
	}
	waitText := func(id, text string) chromedp.Action[chromedp.Void] {
		js := `document.getElementById(` + jsString(id) + `).textContent.includes(` + jsString(text) + `)`
		return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
			return chromedp.Void{}, err
		}
	}

	step("connect",
		chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.Click(chromedp.ID("connect")),
		waitText("status", "connected as alice"),
	)
	step("join news",
		chromedp.SetValue(chromedp.ID("channel"), "news"),
		chromedp.WaitEnabled(chromedp.ID("join")),
		chromedp.Click(chromedp.ID("join")),
		waitText("log", "joined news"),
	)
	code, body := httpDo(t, "POST", p.url("/api/publish"), `{"channel":"news","data":{"text":"hello from the API <b>not bold</b>"}}`, nil)
	if code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	step("see the push", waitText("log", "[news] hello from the API <b>not bold</b>"))
	step("see live stats", waitText("stats", "connections"))

	// Publishing from the page reaches the page too (open mode allows it).
	step("publish from the page",
		chromedp.SetValue(chromedp.ID("message"), "typed in the browser"),
		chromedp.Click(chromedp.ID("publish")),
		waitText("log", "[news] typed in the browser"),
	)
	step("presence",
		chromedp.Click(chromedp.ID("presence")),
		waitText("log", "in news: alice"),
	)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "<", `\x3c`)
	return "'" + r.Replace(s) + "'"
}
