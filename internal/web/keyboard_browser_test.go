package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// keyboard drives a Chromium tab with key events alone: Tab to move, Enter and
// Space to act, and typed characters into the focused field. It never clicks and
// never focuses anything by script; it only reads the page to know where the
// focus is.
type keyboard struct {
	t   *testing.T
	ctx context.Context
}

// press sends keys (kb.Tab, kb.Enter, " ", or text) to whatever has the focus.
func (k keyboard) press(keys string) {
	k.t.Helper()
	if err := chromedp.Do(k.ctx, chromedp.KeyEvent(keys)); err != nil {
		k.t.Fatalf("press %q: %v", keys, err)
	}
}

// focused describes the element with the focus: its tag, id and text.
func (k keyboard) focused() string {
	k.t.Helper()
	s, err := chromedp.Run(k.ctx, chromedp.Evaluate[string](`(() => { const e = document.activeElement; return e ? e.tagName.toLowerCase() + '#' + e.id + ' ' + (e.getAttribute('href') || '') + ' ' + (e.textContent || '').trim().slice(0, 40) : '' })()`))
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}

// is reports whether the focused element matches the CSS selector.
func (k keyboard) is(selector string) bool {
	k.t.Helper()
	ok, err := chromedp.Run(k.ctx, chromedp.Evaluate[bool](`!!(document.activeElement && document.activeElement.matches(`+jsString(selector)+`))`))
	if err != nil {
		k.t.Fatal(err)
	}
	return ok
}

// tabTo presses Tab until the focus is on an element matching selector, as a
// person tabbing through the page would; it fails after a page's worth of stops.
func (k keyboard) tabTo(selector string) {
	k.t.Helper()
	var path []string
	for range 80 {
		if k.is(selector) {
			return
		}
		k.press(kb.Tab)
		path = append(path, k.focused())
	}
	k.t.Fatalf("Tab never reached %s; it went through:\n%s", selector, strings.Join(path, "\n"))
}

// wait waits for selector to be visible (the page's own work: loads, swaps).
func (k keyboard) wait(selector string) {
	k.t.Helper()
	if err := chromedp.Do(k.ctx, chromedp.WaitVisible(chromedp.CSS(selector))); err != nil {
		k.t.Fatalf("wait for %s: %v", selector, err)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// TestKeyboardOnlyStory walks the dashboard's main story with the keyboard alone
// (Tab, Enter, Space, and typing into the focused field): sign up from the home
// page, create a key and copy it, search, ask and see the answer arrive, revoke
// through the in-page confirmation, and log out.
func TestKeyboardOnlyStory(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := servertest.NewChrome(t, 3*time.Minute)
	pageErrors := servertest.PageErrors(t, ctx)
	// The test reads the clipboard back; a person would paste.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: inst.URL,
		}); err != nil {
			t.Fatal(err)
		}
	}
	k := keyboard{t: t, ctx: ctx}
	const email = "kay@example.com"

	// The one navigation by address: opening the site.
	if err := chromedp.Do(ctx, chromedp.Navigate(inst.URL+"/")); err != nil {
		t.Fatal(err)
	}
	t.Run("SkipLinkComesFirst", func(t *testing.T) {
		k.press(kb.Tab)
		if !k.is(".skip-link") {
			t.Fatalf("the first Tab stop is %s, want the skip link", k.focused())
		}
	})

	t.Run("SignUp", func(t *testing.T) {
		k.tabTo(`a[href="/signup"]`)
		k.press(kb.Enter)
		k.wait(`form[action="/signup"]`)
		if !k.is("#email") {
			t.Fatalf("the sign-up page opens with the focus on %s, want the email field", k.focused())
		}
		k.press(email)
		k.press(kb.Tab)
		// A password too short first: the page comes back with the focus on it.
		k.press("short")
		k.press(kb.Enter)
		k.wait(`#password[aria-invalid="true"]`)
		if !k.is("#password") {
			t.Fatalf("after a refused password the focus is on %s, want the password field", k.focused())
		}
		k.press("a long enough password")
		k.press(kb.Enter)
		k.wait(`[data-testid=workspace-name]`)
	})
	inst.VerifyEmail(t, email) // the link in the email is another story (TestBrowserAccountStory)

	var key string
	t.Run("CreateAndCopyAKey", func(t *testing.T) {
		k.tabTo(`.nav a[href="/dashboard/keys"]`)
		k.press(kb.Enter)
		k.wait(`#key-name`)
		k.tabTo(`#key-name`)
		k.press("Laptop")
		k.press(kb.Enter)
		k.wait(`#new-key-secret`)
		if !k.is("#new-key") {
			t.Fatalf("after creating a key the focus is on %s, want the panel that shows it", k.focused())
		}
		var err error
		if key, err = chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#new-key-secret`))); err != nil || !servertest.KeyRe.MatchString(key) {
			t.Fatalf("the panel shows %q (%v)", key, err)
		}
		k.tabTo(`[data-copy="new-key-secret"]`)
		k.press(" ")
		k.wait(`[data-copy="new-key-secret"][data-copied="true"]`)
		label, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-copy="new-key-secret"]`)))
		if !strings.Contains(label, "Copied") {
			t.Errorf("the copy button says %q after copying", label)
		}
		clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		if err != nil || clip != key {
			t.Fatalf("the clipboard holds %q (%v), want the key", clip, err)
		}
		k.tabTo(`[data-dismiss="new-key"]`)
		k.press(kb.Enter)
		if err := chromedp.Do(ctx, chromedp.WaitNotPresent(chromedp.CSS(`#new-key`))); err != nil {
			t.Fatalf("the panel stays after I have saved it: %v", err)
		}
	})
	call(t, inst, "POST", "/v1/documents", key, teaDocs, http.StatusOK)

	t.Run("Search", func(t *testing.T) {
		k.tabTo(`.nav a[href="/dashboard/documents"]`)
		k.press(kb.Enter)
		k.wait(`#doc-query`)
		k.tabTo(`#doc-query`)
		k.press("steep tea")
		k.press(kb.Enter)
		k.wait(`#search-results .result mark`)
		title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#search-results .result h3`)))
		if err != nil || !strings.Contains(title, "Green tea") {
			t.Fatalf("the first result is %q (%v)", title, err)
		}
	})

	t.Run("Ask", func(t *testing.T) {
		k.tabTo(`#ask-question`)
		k.press("how long does green tea steep?")
		k.press(kb.Enter)
		k.wait(`#answer [data-testid=citations]`)
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#answer [data-testid=answer-text]`)))
		if err != nil || !strings.Contains(text, "two minutes") {
			t.Fatalf("the answer reads %q (%v)", text, err)
		}
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/dashboard/documents") {
			t.Fatalf("asking left the page: %s", loc)
		}
	})

	t.Run("RevokeThroughTheConfirmation", func(t *testing.T) {
		k.tabTo(`.nav a[href="/dashboard/keys"]`)
		k.press(kb.Enter)
		k.wait(`#key-name`)
		k.tabTo(`form[action$="/revoke"] button[type=submit]`)
		k.press(kb.Enter)
		k.wait(`dialog[open]`)
		if !k.is(`dialog[open] [data-testid=confirm-cancel]`) {
			t.Fatalf("the confirmation opens with the focus on %s, want Cancel", k.focused())
		}
		// Escape-free: Tab to the action inside the dialog and press Space.
		k.press(kb.Tab)
		if !k.is(`dialog[open] [data-testid=confirm-ok]`) {
			t.Fatalf("Tab in the confirmation went to %s, want its action", k.focused())
		}
		k.press(" ")
		k.wait(`[data-testid=revoked-keys]`)
		if resp := inst.Do(t, http.MethodGet, "/v1/me", key, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the key after revoking it from the keyboard: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("LogOut", func(t *testing.T) {
		k.tabTo(`form[action="/logout"] button`)
		k.press(kb.Enter)
		k.wait(`a[href="/login"]`)
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != inst.URL+"/" {
			t.Fatalf("after logging out the browser is at %s", loc)
		}
	})

	// Pages answered with 4xx on purpose (the refused password) are logged as
	// failed loads; anything else is a real error.
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
