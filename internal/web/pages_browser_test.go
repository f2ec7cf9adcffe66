package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// widths are the viewport widths every page must fit: two phones, a tablet, a laptop.
var widths = []int64{360, 390, 768, 1280}

// paramExamples fills the parameters of GET routes that have them. A new route
// with a parameter fails TestEveryPageFitsAndIsAccessible until it has a row here,
// so no page goes unchecked.
var paramExamples = map[string]string{
	"/verify-email/:token":   "/verify-email/not-a-real-token",
	"/invitations/:token":    "/invitations/not-a-real-token",
	"/password/reset/:token": "/password/reset/not-a-real-token",
}

// TestEveryPageFitsAndIsAccessible visits every GET route of the router that
// answers HTML, for a visitor, a brand-new workspace and a workspace full of data,
// at each of widths. Every page must fit the viewport (no sideways scrolling of
// the page itself; wide tables and code scroll inside their boxes) and axe-core
// must find no serious or critical violation of WCAG 2.2 A/AA.
func TestEveryPageFitsAndIsAccessible(t *testing.T) {
	inst := servertest.Start(t, nil)

	// A workspace with data: documents, keys (one revoked), usage, a second member.
	full := inst.NewAccount(t, plan.Enterprise)
	call(t, inst, "POST", "/v1/documents", full.Key, `{"documents":[
		{"id":"tea","title":"Green tea","url":"https://example.com/a/very/long/path/that/would/push/a/table/wider/than/a/phone/green-tea-brewing-guide","text":"Green tea steeps for two minutes at 80 degrees. Longer makes it bitter."},
		{"id":"bread-with-an-identifier-long-enough-to-overflow-a-narrow-column","title":"Sourdough","text":"Sourdough needs a lively starter and a long, cool rise."}]}`, http.StatusOK)
	for range 3 {
		call(t, inst, "POST", "/v1/search", full.Key, `{"query":"tea"}`, http.StatusOK)
	}
	member := inst.NewAccount(t, plan.Free)
	inst.Join(t, member, full.WorkspaceID, "member")
	b := inst.NewBrowser(t)
	b.LogIn(full.Email, servertest.Password)
	resp, body := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"Laptop"}})
	if resp.StatusCode >= 400 {
		t.Fatalf("create a key: %d %s", resp.StatusCode, body)
	}
	pages := htmlRoutes(t, inst, b)

	ctx := servertest.NewChrome(t, 12*time.Minute)
	check := func(t *testing.T, who string) {
		for _, p := range pages {
			t.Run(who+p, func(t *testing.T) { checkPage(t, ctx, who, inst.URL+p) })
		}
		// Pages that only exist with a query, and the states that add to a page.
		for _, p := range []string{"/dashboard/documents/search?q=tea", "/dashboard/documents/search?q=qzxvqzxv"} {
			if who != "visitor" {
				t.Run(who+p, func(t *testing.T) { checkPage(t, ctx, who, inst.URL+p) })
			}
		}
	}
	check(t, "visitor")

	// A new workspace, signed up through the form as a person would.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/signup"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "newcomer@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
	); err != nil {
		t.Fatalf("sign up: %v", err)
	}
	check(t, "new")

	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	servertest.LogInChrome(t, ctx, inst.URL, full.Email, servertest.Password)
	check(t, "full")

	// States a page reaches only by acting in it: a new key's panel, and the
	// confirmation dialog open over the keys page.
	t.Run("full/dashboard/keys#new-key", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1280, 900),
			chromedp.Navigate(inst.URL+"/dashboard/keys"),
			chromedp.SendKeys(chromedp.CSS(`#key-name`), "Phone"),
			chromedp.Click(chromedp.CSS(`form[action="/dashboard/keys"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`#new-key`)),
		); err != nil {
			t.Fatalf("create a key: %v", err)
		}
		checkWidths(t, ctx, "full_dashboard_keys_new-key")
	})
	t.Run("full/dashboard/keys#confirm", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1280, 900),
			chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)),
		); err != nil {
			t.Fatalf("open the confirmation: %v", err)
		}
		checkWidths(t, ctx, "full_dashboard_keys_confirm")
	})
}

// checkPage loads addr and, at each width, measures the page and runs axe-core.
func checkPage(t *testing.T, ctx context.Context, who, addr string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(addr), chromedp.WaitReady(chromedp.CSS(`body`))); err != nil {
		t.Fatalf("open %s: %v", addr, err)
	}
	path := addr[strings.Index(addr[len("http://"):], "/")+len("http://"):]
	checkWidths(t, ctx, who+strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(path))
}

// checkWidths measures the page as it is now at each width and runs axe-core on
// it; name names its screenshots.
func checkWidths(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	servertest.InjectAxe(t, ctx)
	for _, w := range widths {
		// Two animation frames: the page's resize observers (app.js) have run.
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 800),
			chromedp.Evaluate[chromedp.Void](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`, chromedp.EvalAwaitPromise)); err != nil {
			t.Fatal(err)
		}
		sw, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if sw > w {
			wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](widest))
			t.Errorf("at %d px the page is %d px wide; widest: %s", w, sw, wide)
		}
		for _, v := range servertest.Axe(t, ctx, "serious", "critical") {
			t.Errorf("at %d px: %s", w, v)
		}
		servertest.Shot(t, ctx, fmt.Sprintf("pages-%s-%d", name, w))
	}
}

// widest names the elements that reach past the viewport, for the failure message.
const widest = `(() => {
	const out = [];
	for (const el of document.querySelectorAll('body *')) {
		const r = el.getBoundingClientRect();
		if (r.right > document.documentElement.clientWidth + 1 && !el.closest('.table-wrap, pre, .snippet')) {
			out.push(el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\s+/g, '.') : '') + ' ' + Math.round(r.right));
		}
		if (out.length >= 5) break;
	}
	return out.join(', ');
})()`

// htmlRoutes lists the router's GET routes that answer HTML, with parameters
// filled in from paramExamples; it fails for a parameter without an example.
// b is signed in as an owner on the plan with every feature, so that no page is
// mistaken for an error page.
func htmlRoutes(t *testing.T, inst *servertest.Instance, b *servertest.Browser) []string {
	t.Helper()
	e, ok := inst.Server.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("the server's handler is %T, not *echo.Echo", inst.Server.Handler())
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range e.Routes() {
		// The API answers JSON by contract; everything else is checked by what it answers.
		if r.Method != http.MethodGet || seen[r.Path] || strings.Contains(r.Path, "*") || strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		seen[r.Path] = true
		path := r.Path
		if strings.Contains(path, ":") {
			ex, ok := paramExamples[path]
			if !ok {
				t.Errorf("GET %s has parameters and no example in paramExamples: add one so the page is checked", path)
				continue
			}
			path = ex
		}
		req, _ := http.NewRequest(http.MethodGet, inst.URL+path, nil)
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			out = append(out, path)
		}
	}
	sort.Strings(out)
	for _, must := range []string{"/", "/dashboard", "/dashboard/documents", "/dashboard/keys", "/dashboard/usage", "/dashboard/billing", "/docs", "/login", "/signup"} {
		if !seen[must] && !slices.Contains(out, must) {
			t.Fatalf("the router's pages %v lack %s", out, must)
		}
	}
	return out
}
