package servertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromePath is the browser the tests drive: $CAIRN_CHROME, or Debian's chromium.
func ChromePath() string {
	if p := os.Getenv("CAIRN_CHROME"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return "/usr/bin/chromium"
}

// NewChrome starts a headless Chromium with a fresh profile for tb and returns a
// chromedp context for one tab; the browser stops when the test ends. Without a
// Chromium binary the test is skipped on a developer machine, but fails in CI
// (CI set), where .ci/run installs one. The context is bounded by timeout so a
// hung page fails the test instead of the whole run.
func NewChrome(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	return NewChromeWith(tb, timeout)
}

// NewChromeWith is NewChrome with extra browser flags, such as the ones that load
// an unpacked extension.
func NewChromeWith(tb testing.TB, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) context.Context {
	tb.Helper()
	path := ChromePath()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "" {
			tb.Skipf("servertest: no Chromium at %s (apt-get install chromium); browser test skipped", path)
		}
		tb.Fatalf("servertest: no Chromium at %s; CI must install it", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// The first Run starts the browser; it must not carry the timeout (that would
	// bound the browser's life, not one action), so start it here.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		tb.Fatalf("servertest: start Chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return tctx
}

// ConfirmInPage waits for the dashboard's confirmation dialog (a modal <dialog>
// that app.js opens in place of window.confirm), returns its question, and
// presses its action button, as a person agreeing would.
func ConfirmInPage(tb testing.TB, ctx context.Context) string {
	tb.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`dialog[open] [data-testid=confirm-ok]`))); err != nil {
		tb.Fatalf("no confirmation dialog: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`dialog[open] #confirm-message`)))
	if err != nil {
		tb.Fatalf("no confirmation dialog: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`dialog[open] [data-testid=confirm-ok]`))); err != nil {
		tb.Fatalf("confirm: %v", err)
	}
	return msg
}

// PageErrors collects the tab's errors from now on: uncaught JavaScript exceptions
// and browser log entries of level error, which include Content-Security-Policy
// violations and failed loads of the page's assets. Call the returned func to
// read what has been collected so far.
func PageErrors(tb testing.TB, ctx context.Context) func() []string {
	tb.Helper()
	var mu sync.Mutex
	var errs []string
	add := func(s string) {
		mu.Lock()
		errs = append(errs, s)
		mu.Unlock()
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		tb.Fatalf("servertest: enable the browser log: %v", err)
	}
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
				add(string(ev.Entry.Source) + ": " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			if ev.ExceptionDetails != nil {
				add("exception: " + ev.ExceptionDetails.Text)
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// Screenshot saves a full-page PNG of the tab to path, for looking at pages.
func Screenshot(tb testing.TB, ctx context.Context, path string) {
	tb.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("servertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatalf("servertest: screenshot: %v", err)
	}
}

// Shot saves a full-page screenshot named name (.png) into the directory
// CAIRN_SCREENSHOTS names, so people can look at the pages a test walked through;
// without it, it does nothing.
func Shot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	if dir := os.Getenv("CAIRN_SCREENSHOTS"); dir != "" {
		Screenshot(tb, ctx, filepath.Join(dir, name+".png"))
	}
}
