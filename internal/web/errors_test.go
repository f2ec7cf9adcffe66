package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestErrorsKeepTheFrame: a signed-in person's errors are pages inside the
// dashboard, with the sidebar and in plain words; a visitor's are public pages.
func TestErrorsKeepTheFrame(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	for _, path := range []string{"/dashboard/no-such-page", "/no-such-page", "/dashboard/keys/extra/segments"} {
		t.Run("NotFoundInTheFrame"+path, func(t *testing.T) {
			status, page := b.Get(path)
			if status != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want 404", path, status)
			}
			for _, want := range []string{`data-testid="workspace-name"`, `data-testid="error-page"`, "Page not found", "There is nothing at this address", `action="/logout"`} {
				if !strings.Contains(page, want) {
					t.Errorf("GET %s lacks %q", path, want)
				}
			}
			if strings.Contains(page, "No such route") || strings.Contains(page, `href="/login"`) {
				t.Errorf("GET %s shows jargon or the logged-out header", path)
			}
		})
	}
	t.Run("VisitorsGetThePublicPage", func(t *testing.T) {
		status, page := inst.NewBrowser(t).Get("/no-such-page")
		if status != http.StatusNotFound || !strings.Contains(page, "Page not found") || strings.Contains(page, `data-testid="workspace-name"`) {
			t.Fatalf("a visitor's 404: %d %.300s", status, page)
		}
	})
	t.Run("ForbiddenInTheFrame", func(t *testing.T) {
		viewer := inst.NewAccount(t, plan.Free)
		pool := inst.Server.Pool()
		ctx := context.Background()
		if _, err := pool.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1`, viewer.UserID); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'viewer')`, acct.WorkspaceID, viewer.UserID); err != nil {
			t.Fatal(err)
		}
		vb := inst.NewBrowser(t)
		vb.LogIn(viewer.Email, servertest.Password)
		status, page := vb.Get("/dashboard/keys")
		if status != http.StatusForbidden || !strings.Contains(page, `data-testid="workspace-name"`) || !strings.Contains(page, "needs the member role") {
			t.Fatalf("a viewer's 403: %d %.500s", status, page)
		}
	})
	t.Run("HtmxGetsTheMessageAlone", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, inst.URL+"/dashboard/no-such-page", nil)
		req.Header.Set("HX-Request", "true")
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(strings.TrimSpace(body), `<div class="alert error" role="alert">`) {
			t.Fatalf("htmx 404: %d %s", resp.StatusCode, body)
		}
	})
}

// TestFailedFormComesBackToItsPage: a form that fails for a reason of the moment
// (here Stripe unreachable) returns to the page it was sent from with the message,
// shown once, instead of replacing the page with an error.
func TestFailedFormComesBackToItsPage(t *testing.T) {
	inst := servertest.Start(t, map[string]string{
		"STRIPE_SECRET_KEY": "sk_test_cairn", "STRIPE_WEBHOOK_SECRET": "whsec_cairn_test",
		"STRIPE_PRICE_PRO": "price_pro", "STRIPE_PRICE_ENTERPRISE": "price_ent",
		"STRIPE_API_BASE": "http://127.0.0.1:1", // nothing listens: Stripe is down
	})
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	t.Run("BackToTheRefererWithTheMessage", func(t *testing.T) {
		form := url.Values{"plan": {"pro"}, "_csrf": {b.CSRF("/dashboard/billing")}}
		resp := b.Send("/dashboard/billing/checkout", form, http.Header{"Referer": {inst.URL + "/dashboard/billing"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/billing" {
			t.Fatalf("failed upgrade: %d to %q, want 303 to /dashboard/billing", resp.StatusCode, resp.Header.Get("Location"))
		}
		status, page := b.Get("/dashboard/billing")
		if status != http.StatusOK || !strings.Contains(page, `data-testid="notice-error"`) || !strings.Contains(page, "Stripe could not be reached, so nothing was changed") {
			t.Fatalf("the billing page does not say why the upgrade failed: %d\n%s", status, page)
		}
		if !strings.Contains(page, "Upgrade to Pro") {
			t.Fatal("the billing page itself is missing")
		}
		if _, again := b.Get("/dashboard/billing"); strings.Contains(again, "Stripe could not be reached") {
			t.Fatal("the message is shown twice")
		}
	})
	t.Run("WithoutARefererThePageAboveTheRoute", func(t *testing.T) {
		resp, _ := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/billing" {
			t.Fatalf("%d to %q, want 303 to /dashboard/billing", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("AForeignRefererIsIgnored", func(t *testing.T) {
		form := url.Values{"plan": {"pro"}, "_csrf": {b.CSRF("/dashboard/billing")}}
		resp := b.Send("/dashboard/billing/checkout", form, http.Header{"Referer": {"https://evil.example/dashboard/keys"}})
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != "/dashboard/billing" {
			t.Fatalf("Location %q, want /dashboard/billing", loc)
		}
	})
}
