// Package extension_test drives the reference extension in this directory in a
// real Chromium against a real Cairn replica.
package extension_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/extensions"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// startBrowser runs headless Chromium (new headless) with the unpacked extension
// from this directory and returns the browser's first tab and the extension's id.
func startBrowser(t *testing.T) (ctx context.Context, id string) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx = servertest.NewChromeWith(t, 4*time.Minute,
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-extensions-except", dir),
		chromedp.Flag("load-extension", dir),
		// Extensions.triggerAction, the DevTools stand-in for clicking the toolbar button.
		chromedp.Flag("enable-unsafe-extension-debugging", true),
		chromedp.Flag("lang", "en-US"),
	)
	deadline := time.Now().Add(20 * time.Second)
	for id == "" {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range infos {
			if ti.Type == "service_worker" && strings.HasPrefix(ti.URL, "chrome-extension://") {
				id = strings.SplitN(strings.TrimPrefix(ti.URL, "chrome-extension://"), "/", 2)[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the extension's service worker never started: the extension did not load")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx, id
}

// clickToolbarButton does what clicking the extension's toolbar button on the tab
// showing url does: it grants the extension that tab (activeTab) and opens the popup.
func clickToolbarButton(t *testing.T, ctx context.Context, id, url string) {
	t.Helper()
	res, err := chromedp.CallBrowser(ctx, target.GetTargets, target.GetTargetsParams{Filter: target.Filter{{Type: "tab"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range res.TargetInfos {
		if ti.URL == url {
			if _, err := chromedp.CallBrowser(ctx, extensions.TriggerAction, extensions.TriggerActionParams{ID: id, TargetID: string(ti.TargetID)}); err != nil {
				t.Fatalf("click the toolbar button: %v", err)
			}
			return
		}
	}
	t.Fatalf("no tab shows %s", url)
}

// serviceWorker attaches to the extension's service worker, where background.js runs.
func serviceWorker(t *testing.T, browser context.Context, id string) context.Context {
	t.Helper()
	infos, err := chromedp.Targets(browser)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		if ti.Type == "service_worker" && strings.HasPrefix(ti.URL, "chrome-extension://"+id+"/") {
			ctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(ti.TargetID))
			t.Cleanup(cancel)
			return ctx
		}
	}
	t.Fatal("the extension's service worker is not running")
	return nil
}

// run runs the steps in the tab, failing the test with what the tab shows.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nthe tab shows:\n%s", what, err, body)
	}
}

// get runs one action that returns a value in the tab.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? "").includes(%q)`, sel, want),
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))
}

// TestExtension signs the real extension in through the device flow, approving
// the code in a dashboard tab; saves a page served by the test from the popup,
// searches for it and asks about it, checking that the citation links to the page
// with a text fragment; then uses up a Free workspace's monthly quota and checks
// that the popup says when it resets.
func TestExtension(t *testing.T) {
	const monthly = 8 // Free's monthly requests here, so the test can use them up
	inst := servertest.Start(t, map[string]string{
		"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": fmt.Sprint(monthly),
		"CAIRN_PLAN_FREE_RATE_PER_MINUTE":    "1000",
	})
	acct := inst.NewAccount(t, plan.Free)
	article, err := os.ReadFile("../internal/retrieval/testdata/pages/article.html")
	if err != nil {
		t.Fatal(err)
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(article)
	}))
	t.Cleanup(site.Close)
	pageURL := site.URL + "/2024/03/why-glaciers-are-blue/"

	browser, id := startBrowser(t)
	ext := "chrome-extension://" + id

	// Sign in from the options page: set the backend, start the device flow.
	options, cancel := chromedp.NewContext(browser)
	defer cancel()
	run(t, options, "set the backend and start signing in",
		chromedp.Navigate(ext+"/options.html"),
		waitText("#account", "Not signed in."),
		chromedp.SetValue("#backend", inst.URL),
		chromedp.Click("#backend-form button"),
		waitText("#notice", "Saving to "+inst.URL),
		chromedp.Click("#signin"),
		chromedp.WaitVisible("#user-code"),
		waitText("#device-status", "Waiting"),
	)
	userCode := get(t, options, "the user code", chromedp.Text("#user-code"))
	verify := get(t, options, "the sign-in link", chromedp.AttributeValue("#verify-link", "href")).Value
	if !regexp.MustCompile(`^[B-Z]{4}-[B-Z]{4}$`).MatchString(userCode) || verify != inst.URL+"/activate?code="+userCode {
		t.Fatalf("the options page shows code %q and link %q", userCode, verify)
	}

	// Approve it in a dashboard tab, logging in on the way.
	dash, cancelDash := chromedp.NewContext(browser)
	defer cancelDash()
	run(t, dash, "approve the code at /activate",
		chromedp.Navigate(verify),
		chromedp.WaitVisible("#email"),
		chromedp.SetValue("#email", acct.Email),
		chromedp.SetValue("#password", servertest.Password),
		chromedp.Submit("#password"),
		chromedp.WaitVisible(`[data-testid=device-request]`),
		waitText(`[data-testid=user-code]`, userCode),
		waitText(`[data-testid=device-request]`, "Cairn for Chrome on Linux"),
		chromedp.Click(`[data-testid=approve]`),
		chromedp.WaitVisible(`[data-testid=activate-done]`),
		waitText(`[data-testid=activate-done]`, "Approved"),
	)
	run(t, options, "the options page picks up the key",
		waitText("#account", "Signed in to"),
		waitText("#account", "(free plan)"),
	)

	// The page to save, in its own tab; the toolbar button grants it to the extension.
	page, cancelPage := chromedp.NewContext(browser)
	defer cancelPage()
	run(t, page, "open the page", chromedp.Navigate(pageURL), chromedp.WaitVisible("h1"))
	clickToolbarButton(t, browser, id, pageURL)

	popup, cancelPopup := chromedp.NewContext(browser)
	defer cancelPopup()
	errs := servertest.PageErrors(t, popup)
	run(t, popup, "save the page from the popup",
		chromedp.Navigate(ext+"/popup.html"),
		chromedp.WaitVisible("#save"),
		chromedp.Click("#save"),
		waitText("#save-result", "Saved “Why Glaciers Are Blue"),
	)
	// Offline (every request to the server fails as with no network), a save is
	// queued and said so; back online, opening the popup sends it.
	paused := chromedp.Events(popup, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(popup, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonInternetDisconnected})
		}
	}()
	offline := func(off bool) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if off {
				_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: inst.URL + "/*"}}})
				return err
			}
			_, err := chromedp.Call(ctx, fetch.Disable, cdp.Empty{})
			return err
		})
	}
	run(t, popup, "save while offline",
		offline(true),
		chromedp.Click("#save"),
		waitText("#notice", "Cannot reach Cairn"),
		waitText("#save-result", "queued, and retried automatically"),
		waitText("#queue", "1 save waiting to be retried"),
		offline(false),
		chromedp.Navigate(ext+"/popup.html"),
		waitText("#notice", "1 queued save sent."),
	)
	run(t, popup, "search for it",
		chromedp.SetValue("#search-q", "why is glacier ice blue"),
		chromedp.Click("#search-form button"),
		chromedp.WaitVisible("#results li a"),
	)
	results := get(t, popup, "the results", chromedp.Text("#results"))
	resultHref := get(t, popup, "the first result's link", chromedp.AttributeValue("#results li a", "href")).Value
	if !strings.Contains(results, "Why Glaciers Are Blue") || !strings.HasPrefix(resultHref, pageURL+"#:~:text=") {
		t.Fatalf("search results %q, first link %q", results, resultHref)
	}
	run(t, popup, "ask about it",
		chromedp.SetValue("#ask-q", "Why does old glacier ice look blue?"),
		chromedp.Click("#ask-form button"),
		chromedp.WaitVisible("#citations li a"),
	)
	answer := get(t, popup, "the answer", chromedp.Text("#answer"))
	citation := get(t, popup, "the citation's link", chromedp.AttributeValue("#citations li a", "href")).Value
	if answer == "" || !strings.HasPrefix(citation, pageURL+"#:~:text=") || len(citation) < len(pageURL)+len("#:~:text=")+10 {
		t.Fatalf("answer %q with citation link %q; want a link to the page with a text fragment", answer, citation)
	}
	frag := strings.SplitN(citation, "#:~:text=", 2)[1]
	if strings.ContainsAny(frag, " ,&") {
		t.Fatalf("the text fragment %q is not escaped", frag)
	}
	// The fragment quotes the page: the browser finds it there and scrolls to it.
	quote, err := url.PathUnescape(frag)
	if err != nil {
		t.Fatal(err)
	}
	pageText := get(t, page, "the page's text", chromedp.Evaluate[string](`document.body.innerText.replace(/\s+/g, " ")`))
	if !strings.Contains(pageText, quote) || len(strings.Fields(quote)) < 4 {
		t.Fatalf("the citation's text fragment %q is not a passage of the page", quote)
	}

	// "Save selection to Cairn": select a paragraph in the page's tab and run the
	// service worker's menu handler as the menu click would. The menu's own text is
	// cut short (as browsers do); the whole selection, read in the tab, is saved.
	selection := get(t, page, "select a paragraph", chromedp.Evaluate[string](
		`(() => { const p = document.querySelectorAll("article p, p")[2]; getSelection().selectAllChildren(p); return String(getSelection()); })()`))
	if len(selection) < 80 {
		t.Fatalf("selected %q; want a whole paragraph", selection)
	}
	worker := serviceWorker(t, browser, id)
	event := get(t, worker, "the context-menu save", chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
		const tabs = await chrome.tabs.query({});
		const tab = tabs.find((t) => t.url === %[1]q);
		if (!tab) return "no tab shows the page";
		await saveFromMenu({ menuItemId: "cairn-save-selection", selectionText: %[2]q, pageUrl: %[1]q }, tab);
		return (await chrome.storage.local.get("lastEvent")).lastEvent.text;
	})()`, pageURL, selection[:30]), chromedp.EvalAwaitPromise))
	if event != "Selection saved." {
		t.Fatalf("the context-menu save reported %q", event)
	}
	run(t, dash, "the selection is a document of its own",
		chromedp.Navigate(inst.URL+"/dashboard/documents"),
		waitText("main", strings.Join(strings.Fields(selection), " ")[:50]),
		waitText("main", "— Why Glaciers Are Blue"),
	)

	// Use up the month: 5 requests so far (three saves, a search, a question); the rest go on searches.
	for i := 0; i < monthly; i++ {
		run(t, popup, "search again", chromedp.Click("#search-form button"), chromedp.Sleep(150*time.Millisecond))
		notice, _ := chromedp.Run(popup, chromedp.TextContent("#notice"))
		if strings.Contains(notice, "used up") {
			break
		}
	}
	now := time.Now().UTC()
	reset := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	run(t, popup, "the quota runs out",
		waitText("#notice", "This month's requests are used up."),
		waitText("#notice", fmt.Sprintf("The quota resets on %s %d, %d.", reset.Month(), reset.Day(), reset.Year())),
	)
	upgrade := get(t, popup, "the upgrade link", chromedp.AttributeValue(`[data-testid=notice-link]`, "href")).Value
	if upgrade != inst.URL+"/dashboard/billing" {
		t.Fatalf("the upgrade link goes to %q", upgrade)
	}
	for _, e := range errs() {
		// The browser logs failed loads: the offline save and the 429s are the test's own.
		if !strings.Contains(e, "status of 429") && !strings.Contains(e, "ERR_INTERNET_DISCONNECTED") {
			t.Fatalf("the popup logged an error: %s", e)
		}
	}
	servertest.Screenshot(t, popup, filepath.Join(os.TempDir(), "cairn-extension-popup.png"))
}
