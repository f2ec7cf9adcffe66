package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserSignUpKeyRevoke walks the story in a real browser: sign up,
// create a key, read it off the page, call the API with it, revoke it in the page,
// and see the API refuse it.
func TestBrowserSignUpKeyRevoke(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := servertest.NewChrome(t, 90*time.Second)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/"),
	); err != nil {
		t.Fatalf("open home: %v", err)
	}
	servertest.Shot(t, ctx, "01-home")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/signup"]`)),
	); err != nil {
		t.Fatalf("open sign-up: %v", err)
	}
	servertest.Shot(t, ctx, "02-signup")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
	); err != nil {
		t.Fatalf("sign up: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loc, inst.URL+"/dashboard"; got != want {
		t.Fatalf("after sign-up the browser is at %s, want %s", got, want)
	}
	wsName, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=workspace-name]`)))
	if err != nil {
		t.Fatal(err)
	}
	servertest.Shot(t, ctx, "03-overview")
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=verify-banner]`))); err != nil {
		t.Fatalf("no banner asks a new account to verify its email: %v", err)
	}
	// Verification has its own story (TestBrowserAccountStory); this one is about keys.
	inst.VerifyEmail(t, "ada@example.com")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/dashboard/keys"),
		chromedp.WaitVisible(chromedp.CSS(`#key-name`)),
	); err != nil {
		t.Fatalf("open keys page: %v", err)
	}
	servertest.Shot(t, ctx, "04-keys-empty")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#key-name`), "Chrome on my laptop"),
		chromedp.Click(chromedp.CSS(`form[action="/dashboard/keys"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-key-secret`)),
	); err != nil {
		t.Fatalf("create key: %v", err)
	}
	servertest.Shot(t, ctx, "05-key-created")
	key, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#new-key-secret`)))
	if err != nil {
		t.Fatal(err)
	}
	if !servertest.KeyRe.MatchString(key) || len(key) != len("ck_live_")+38 {
		t.Fatalf("the page shows %q, not a key matching %s", key, servertest.KeyRe)
	}

	resp := inst.Do(t, http.MethodGet, "/v1/me", key, "")
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/me with the new key: %d %s", resp.StatusCode, body)
	}
	var me struct {
		Workspace struct{ ID, Name, Plan string }
		Key       struct{ ID, Name, Prefix string }
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil {
		t.Fatalf("GET /v1/me: %v: %s", err, body)
	}
	if me.Workspace.Name != wsName || me.Workspace.Plan != "free" || me.Key.Name != "Chrome on my laptop" || me.Key.Prefix != key[:12] {
		t.Fatalf("GET /v1/me = %+v; want workspace %q on free, key %q with prefix %q", me, wsName, "Chrome on my laptop", key[:12])
	}

	// Reloading the page after the key was made shows no key and makes none.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#key-name`))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#new-key-secret, tr[data-key-id]').length`)); err != nil || n != 1 {
		t.Fatalf("after a reload the page shows %d of (the secret, key rows), want just the one key's row (%v)", n, err)
	}

	// Revoking asks in the page first: Cancel leaves the key alone.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog[open] [data-testid=confirm-cancel]`)),
		chromedp.Click(chromedp.CSS(`dialog[open] [data-testid=confirm-cancel]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`dialog[open]`)),
	); err != nil {
		t.Fatalf("cancel the revocation: %v", err)
	}
	if resp := inst.Do(t, http.MethodGet, "/v1/me", key, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the key after a cancelled revocation: %d", resp.StatusCode)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action$="/revoke"] button[type=submit]`))); err != nil {
		t.Fatal(err)
	}
	if msg := servertest.ConfirmInPage(t, ctx); !strings.Contains(msg, "Revoke “Chrome on my laptop”?") {
		t.Errorf("the revoke confirmation says %q", msg)
	}
	// The revoked key sits behind the "Revoked keys" toggle.
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=revoked-keys] summary`)),
		chromedp.Click(chromedp.CSS(`[data-testid=revoked-keys] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`tr.is-revoked`)),
	); err != nil {
		t.Fatalf("revoke key: %v", err)
	}
	servertest.Shot(t, ctx, "06-key-revoked")

	resp = inst.Do(t, http.MethodGet, "/v1/me", key, "")
	body = servertest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/me with the revoked key: %d %s, want 401", resp.StatusCode, body)
	}
}

// TestBrowserPagesRender visits every page of the dashboard and the public site
// in Chromium and checks each renders its heading with no script error, no
// Content-Security-Policy violation and no asset that failed to load.
func TestBrowserPagesRender(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := servertest.NewChrome(t, 90*time.Second)
	pageErrors := servertest.PageErrors(t, ctx)

	visit := func(path, heading, shotName string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(inst.URL+path), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(h1, heading) {
			t.Errorf("%s: heading %q, want %q", path, h1, heading)
		}
		// The stylesheet must have loaded: the body uses its system font stack.
		font, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).fontFamily`))
		if err != nil || !strings.Contains(font, "system-ui") {
			t.Errorf("%s: app.css not applied (font %q, %v)", path, font, err)
		}
		servertest.Shot(t, ctx, shotName)
	}

	visit("/", "Everything you read", "10-home")
	visit("/login", "Welcome back", "11-login")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#email`), "nobody@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "wrong password"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=form-error]`)),
	); err != nil {
		t.Fatalf("failed login: %v", err)
	}
	servertest.Shot(t, ctx, "12-login-failed")
	visit("/signup", "Create your account", "13-signup")
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#email`), "not an email"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "short"),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.field .error`)),
	); err != nil {
		t.Fatalf("bad sign-up: %v", err)
	}
	servertest.Shot(t, ctx, "14-signup-invalid")
	visit("/no-such-page", "Page not found", "15-not-found")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/signup"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "grace@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
	); err != nil {
		t.Fatalf("sign up: %v", err)
	}
	for _, p := range []struct{ path, heading, name string }{
		{"/dashboard", "Overview", "20-overview"},
		{"/dashboard/documents", "Documents", "21-documents"},
		{"/dashboard/keys", "API keys", "22-keys"},
		{"/dashboard/usage", "Usage", "23-usage"},
		{"/dashboard/billing", "Billing", "24-billing"},
		{"/dashboard/team", "Team", "25-team"},
		{"/dashboard/audit", "Audit log", "27-audit"},
		{"/dashboard/settings", "Settings", "26-settings"},
	} {
		visit(p.path, p.heading, p.name)
		active, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.nav a.active`)))
		if err != nil || !strings.Contains(active, p.heading) {
			t.Errorf("%s: the highlighted nav item is %q (%v), want %q", p.path, active, err, p.heading)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	visit("/dashboard/keys", "API keys", "30-keys-phone")
	visit("/", "Everything you read", "31-home-phone")

	// Pages answered with 4xx on purpose (bad forms, the 404) are logged as failed
	// loads; a failed load of anything under /static/ is a real error.
	var unexpected []string
	for _, e := range pageErrors() {
		if !strings.HasPrefix(e, "network: ") || strings.Contains(e, "/static/") {
			unexpected = append(unexpected, e)
		}
	}
	if len(unexpected) > 0 {
		t.Fatalf("the browser reported errors:\n%s", strings.Join(unexpected, "\n"))
	}
}
