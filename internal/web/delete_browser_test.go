package web_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserDeleteAccount deletes an account in Chromium as its owner would:
// from Settings, with the password asked again and the in-page confirmation.
// An owner whose workspace has another member is sent to Team and keeps
// everything; a sole owner with documents and a key who mistypes the password
// stays on Settings with the error on the field, then, with the right one, lands
// on the home page logged out, cannot log in again, has a dead key, and their
// address can sign up anew.
func TestBrowserDeleteAccount(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := servertest.NewChrome(t, 4*time.Minute)
	redirects := redirectsOf(ctx)
	// deleteWith types password into the delete form, sends it and agrees in the
	// confirmation dialog, whose question it checks.
	deleteWith := func(t *testing.T, password string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1280, 900),
			chromedp.Navigate(inst.URL+"/dashboard/settings"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=your-data]`)),
			chromedp.SendKeys(chromedp.CSS(`#delete-password`), password),
			chromedp.Click(chromedp.CSS(`form[action="/dashboard/settings/delete"] button[type=submit]`)),
		); err != nil {
			t.Fatalf("send the delete form: %v", err)
		}
		if q := servertest.ConfirmInPage(t, ctx); !strings.Contains(q, "Delete your account and every workspace you own") {
			t.Fatalf("the confirmation asks %q", q)
		}
	}

	t.Run("OwnerOfASharedWorkspace", func(t *testing.T) {
		owner := inst.NewAccount(t, plan.Enterprise)
		inst.Join(t, inst.NewAccount(t, plan.Free), owner.WorkspaceID, "member")
		call(t, inst, "POST", "/v1/documents", owner.Key, `{"documents":[{"id":"kept","text":"The team still needs this."}]}`, http.StatusOK)
		servertest.LogInChrome(t, ctx, inst.URL, owner.Email, servertest.Password)
		deleteWith(t, servertest.Password)
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=notice-error] a[href="/dashboard/team"]`))); err != nil {
			t.Fatalf("no message linking to Team: %v", err)
		}
		if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=notice-error]`))); err != nil || !strings.Contains(msg, "Transfer ownership") {
			t.Fatalf("the message says %q (%v), want it to ask for a transfer of ownership", msg, err)
		}
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != inst.URL+"/dashboard/settings" {
			t.Fatalf("after the refusal the page is %q (%v), want Settings", loc, err)
		}
		call(t, inst, "GET", "/v1/documents/kept", owner.Key, "", http.StatusOK)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(inst.URL+"/dashboard"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
		); err != nil {
			t.Fatalf("the owner was logged out though nothing was deleted: %v", err)
		}
		if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SoleOwner", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Enterprise)
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[
			{"id":"tea","title":"Green tea","text":"Green tea steeps for two minutes at 80 degrees."},
			{"id":"bread","title":"Sourdough","text":"Sourdough needs a lively starter and a long, cool rise."}]}`, http.StatusOK)
		servertest.LogInChrome(t, ctx, inst.URL, acct.Email, servertest.Password)

		// Before anything is typed, the form says what goes and what stays.
		if err := chromedp.Do(ctx, chromedp.Navigate(inst.URL+"/dashboard/settings"), chromedp.WaitVisible(chromedp.CSS(`[data-testid=delete-effects]`))); err != nil {
			t.Fatal(err)
		}
		words, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid=delete-effects]').textContent + ' | ' +
			document.querySelector('[data-testid=delete-kept]').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"every workspace you own", "documents", "API keys", "subscription", "at once", "logs you out everywhere",
			"Kept, without your email address", "usage", "audit log", acct.Email} {
			if !strings.Contains(words, want) {
				t.Errorf("the delete form does not say %q: %s", want, words)
			}
		}

		deleteWith(t, "not my password at all")
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#delete-password-error`))); err != nil {
			t.Fatalf("no error beside the password: %v", err)
		}
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[document.querySelector('h1').textContent,
			document.activeElement.id,
			document.activeElement.getAttribute('aria-invalid'),
			document.activeElement.getAttribute('aria-describedby'),
			document.getElementById('delete-password-error').textContent].join('|')`))
		if err != nil {
			t.Fatal(err)
		}
		if want := "Settings|delete-password|true|delete-password-error|"; !strings.HasPrefix(state, want) || !strings.Contains(state, "Your account was not deleted") {
			t.Fatalf("after a wrong password: %q, want Settings with the focus on the password, tied to its error", state)
		}
		call(t, inst, "GET", "/v1/documents/tea", acct.Key, "", http.StatusOK)
		t.Run("FitsAndIsAccessible", func(t *testing.T) { checkWidths(t, ctx, "settings_delete_refused") })

		deleteWith(t, servertest.Password)
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.hero a[href="/signup"]`))); err != nil {
			t.Fatalf("the home page, logged out, did not follow the deletion: %v", err)
		}
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != inst.URL+"/" {
			t.Fatalf("after the deletion the page is %q (%v), want /", loc, err)
		}
		if r := redirects.from(inst.URL + "/dashboard/settings/delete"); r == nil || r.status != http.StatusSeeOther || r.to != inst.URL+"/" {
			t.Fatalf("the deletion answered %+v, want 303 to /", r)
		}

		// The session is gone: the dashboard sends the browser to log in.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(inst.URL+"/dashboard"),
			chromedp.WaitVisible(chromedp.CSS(`form[action^="/login"]`)),
		); err != nil {
			t.Fatalf("the dashboard after the deletion: %v", err)
		}
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, inst.URL+"/login") {
			t.Fatalf("the dashboard after the deletion is %q (%v), want /login", loc, err)
		}

		// The old credentials no longer log in.
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#email`), acct.Email),
			chromedp.SendKeys(chromedp.CSS(`#password`), servertest.Password),
			chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=form-error], [data-testid=field-error]`)),
		); err != nil {
			t.Fatalf("log in with the deleted account's credentials: %v", err)
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=workspace-name]').length`)); err != nil || n != 0 {
			t.Fatalf("the deleted account's credentials logged in (%d, %v)", n, err)
		}

		// The key is refused.
		servertest.Eventually(t, func() bool {
			resp := inst.Do(t, "GET", "/v1/me", acct.Key, "")
			servertest.ReadBody(t, resp)
			return resp.StatusCode == http.StatusUnauthorized
		}, "the deleted account's key does not answer 401")

		// The address can sign up again, to a new, empty workspace.
		if err := chromedp.Do(ctx,
			chromedp.Navigate(inst.URL+"/signup"),
			chromedp.SendKeys(chromedp.CSS(`#email`), acct.Email),
			chromedp.SendKeys(chromedp.CSS(`#password`), "violet kestrel under copper"),
			chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
		); err != nil {
			t.Fatalf("sign up again with the deleted account's address: %v", err)
		}
	})
}

// redirect is one HTTP redirect the tab followed.
type redirect struct {
	from, to string
	status   int64
}

// redirectLog is the redirects a tab has followed so far.
type redirectLog struct {
	mu   sync.Mutex
	seen []redirect
}

// redirectsOf starts recording the redirects the tab of ctx follows.
func redirectsOf(ctx context.Context) *redirectLog {
	r := &redirectLog{}
	events := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.RedirectResponse != nil {
				r.mu.Lock()
				r.seen = append(r.seen, redirect{from: ev.RedirectResponse.URL, to: ev.Request.URL, status: ev.RedirectResponse.Status})
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// from returns the last redirect answered by url, or nil.
func (r *redirectLog) from(url string) *redirect {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.seen) - 1; i >= 0; i-- {
		if r.seen[i].from == url {
			return &r.seen[i]
		}
	}
	return nil
}
