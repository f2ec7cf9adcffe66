package billing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// meWorkspaceID is the workspace id exactly as GET /v1/me shows it.
func meWorkspaceID(t *testing.T, inst *servertest.Instance, key string) string {
	t.Helper()
	resp := inst.Do(t, http.MethodGet, "/v1/me", key, "")
	var me struct {
		Workspace struct {
			ID   string `json:"id"`
			Plan string `json:"plan"`
		} `json:"workspace"`
	}
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &me); err != nil {
		t.Fatal(err)
	}
	return me.Workspace.ID
}

// startLoggedIn runs a replica with env and logs a new Free account in.
func startLoggedIn(t *testing.T, env map[string]string) (*servertest.Instance, servertest.Account, *servertest.Browser) {
	t.Helper()
	inst := servertest.Start(t, env)
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	login(t, b, acct.Email)
	return inst, acct, b
}

func TestCheckout(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst, acct, b := startLoggedIn(t, stripeEnv(rec.URL))

	_, page := b.Get("/dashboard/billing")
	for _, want := range []string{"Upgrade to Pro", "Upgrade to Enterprise", `data-testid="current-plan"`, `action="/dashboard/billing/checkout"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("billing page lacks %q:\n%s", want, page)
		}
	}

	var sessionURL string
	t.Run("RedirectsToCheckoutSession", func(t *testing.T) {
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303: %s", resp.StatusCode, body)
		}
		sessions := rec.Calls(http.MethodPost, "/v1/checkout/sessions")
		if len(sessions) != 1 {
			t.Fatalf("%d checkout sessions created", len(sessions))
		}
		sessionURL, _ = sessions[0].Response["url"].(string)
		if got := resp.Header.Get("Location"); got == "" || got != sessionURL {
			t.Fatalf("Location %q, want the session URL %q", got, sessionURL)
		}
	})
	t.Run("SessionParameters", func(t *testing.T) {
		f := rec.Calls(http.MethodPost, "/v1/checkout/sessions")[0].Form
		customers := rec.Calls(http.MethodPost, "/v1/customers")
		if len(customers) != 1 {
			t.Fatalf("%d customers created, want 1", len(customers))
		}
		wsID := meWorkspaceID(t, inst, acct.Key)
		for field, want := range map[string]string{
			"mode":                "subscription",
			"client_reference_id": wsID,
			"subscription_data[metadata][workspace_id]": wsID,
			"line_items[0][price]":                      pricePro,
			"line_items[0][quantity]":                   "1",
			"customer":                                  customers[0].Response["id"].(string),
			"success_url":                               inst.URL + billing.PathSuccess + "?session_id={CHECKOUT_SESSION_ID}",
			"cancel_url":                                inst.URL + billing.PathCancel,
		} {
			if got := f.Get(field); got != want {
				t.Errorf("%s = %q, want %q", field, got, want)
			}
		}
		if got := customers[0].Form.Get("email"); got != acct.Email {
			t.Errorf("customer email %q, want %q", got, acct.Email)
		}
	})
	t.Run("CustomerCreatedOnce", func(t *testing.T) {
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"enterprise"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if n := len(rec.Calls(http.MethodPost, "/v1/customers")); n != 1 {
			t.Fatalf("%d customers created after two checkouts, want 1", n)
		}
		sessions := rec.Calls(http.MethodPost, "/v1/checkout/sessions")
		if a, b := sessions[0].Form.Get("customer"), sessions[1].Form.Get("customer"); a != b {
			t.Fatalf("second checkout used customer %s, first %s", b, a)
		}
		if got := sessions[1].Form.Get("line_items[0][price]"); got != priceEnterprise {
			t.Fatalf("price %s, want %s", got, priceEnterprise)
		}
	})
	t.Run("Portal", func(t *testing.T) {
		_, page := b.Get("/dashboard/billing")
		if !strings.Contains(page, "Manage billing") {
			t.Fatal("no Manage billing button once the workspace has a customer")
		}
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/portal", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303: %s", resp.StatusCode, body)
		}
		calls := rec.Calls(http.MethodPost, "/v1/billing_portal/sessions")
		if len(calls) != 1 {
			t.Fatalf("%d portal sessions", len(calls))
		}
		if got, want := resp.Header.Get("Location"), calls[0].Response["url"]; got != want {
			t.Fatalf("Location %q, want %q", got, want)
		}
		if got, want := calls[0].Form.Get("return_url"), inst.URL+billing.PathBilling; got != want {
			t.Fatalf("return_url %q, want %q", got, want)
		}
		if got, want := calls[0].Form.Get("customer"), rec.Calls(http.MethodPost, "/v1/customers")[0].Response["id"]; got != want {
			t.Fatalf("portal customer %q, want %q", got, want)
		}
		if n := queryInt(t, inst, `SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'billing.portal_opened' AND actor_user_id = $2`,
			acct.WorkspaceID, acct.UserID); n != 1 {
			t.Fatalf("%d audit entries for opening the portal, want 1 naming the owner", n)
		}
	})
	t.Run("IdempotencyKeyOnEveryPost", func(t *testing.T) {
		seen := map[string]bool{}
		for _, path := range []string{"/v1/customers", "/v1/checkout/sessions", "/v1/billing_portal/sessions"} {
			for _, c := range rec.Calls(http.MethodPost, path) {
				if c.IdempotencyKey == "" {
					t.Fatalf("POST %s without an Idempotency-Key", path)
				}
				if seen[c.IdempotencyKey] {
					t.Fatalf("POST %s reused idempotency key %s of another request", path, c.IdempotencyKey)
				}
				seen[c.IdempotencyKey] = true
			}
		}
	})
	t.Run("SubscribedWorkspaceChangesPlanInPortal", func(t *testing.T) {
		customer := rec.Calls(http.MethodPost, "/v1/customers")[0].Response["id"].(string)
		send(t, inst, event(newID("evt"), "customer.subscription.created", time.Now(),
			subscription(newID("sub"), customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil)))
		portals := len(rec.Calls(http.MethodPost, "/v1/billing_portal/sessions"))
		checkouts := len(rec.Calls(http.MethodPost, "/v1/checkout/sessions"))
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"enterprise"}})
		calls := rec.Calls(http.MethodPost, "/v1/billing_portal/sessions")
		if resp.StatusCode != http.StatusSeeOther || len(calls) != portals+1 || resp.Header.Get("Location") != calls[len(calls)-1].Response["url"] {
			t.Fatalf("status %d to %q, want 303 to a new portal session: %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if n := len(rec.Calls(http.MethodPost, "/v1/checkout/sessions")); n != checkouts {
			t.Fatalf("a subscribed workspace got %d new Checkout sessions, want none", n-checkouts)
		}
		_, page := b.Get("/dashboard/billing")
		if strings.Contains(page, "Upgrade to") || !strings.Contains(page, "Switch in Manage billing") {
			t.Fatalf("a subscribed workspace should switch plans in the portal:\n%s", page)
		}
		if !strings.Contains(page, `data-testid="billing-plan">Pro<`) || !strings.Contains(page, "Renews on") {
			t.Fatalf("billing page does not show the Pro subscription:\n%s", page)
		}
	})
	t.Run("UnknownPlanRefused", func(t *testing.T) {
		other := inst.NewAccount(t, plan.Free)
		ob := inst.NewBrowser(t)
		login(t, ob, other.Email)
		resp, _ := ob.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"free"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestCheckoutConcurrentFirstUseStoresOneCustomer(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst, acct, b := startLoggedIn(t, stripeEnv(rec.URL))
	token := b.CSRF("/dashboard/billing")
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := b.Post("/dashboard/billing/checkout", url.Values{"plan": {"pro"}, "_csrf": {token}})
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusSeeOther {
			t.Fatalf("checkout %d: status %d", i, c)
		}
	}
	var stored string
	if err := inst.Server.Pool().QueryRow(context.Background(), "SELECT customer_id FROM stripe_customers WHERE workspace_id = $1", acct.WorkspaceID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Calls(http.MethodPost, "/v1/checkout/sessions") {
		if got := s.Form.Get("customer"); got != stored {
			t.Fatalf("a session used customer %s, but the workspace's is %s", got, stored)
		}
	}
	// Racing requests create the customer with one idempotency key, so real Stripe
	// returns one customer to all of them.
	keys := map[string]bool{}
	for _, c := range rec.Calls(http.MethodPost, "/v1/customers") {
		keys[c.IdempotencyKey] = true
	}
	if len(keys) != 1 {
		t.Fatalf("customer creations used %d idempotency keys, want 1", len(keys))
	}
}

func TestBillingPermissions(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst := servertest.Start(t, stripeEnv(rec.URL))
	acct := inst.NewAccount(t, plan.Free)
	if _, err := inst.Server.Pool().Exec(context.Background(), "UPDATE memberships SET role = 'member' WHERE workspace_id = $1", acct.WorkspaceID); err != nil {
		t.Fatal(err)
	}
	b := inst.NewBrowser(t)
	login(t, b, acct.Email)

	t.Run("PageReadOnly", func(t *testing.T) {
		_, page := b.Get("/dashboard/billing")
		if strings.Contains(page, "Upgrade to") || !strings.Contains(page, "Only the workspace's owner can change") {
			t.Fatalf("a member sees billing actions:\n%s", page)
		}
	})
	for _, path := range []string{"/dashboard/billing/checkout", "/dashboard/billing/portal"} {
		t.Run("Forbidden"+path, func(t *testing.T) {
			resp, _ := b.Submit("/dashboard/billing", path, url.Values{"plan": {"pro"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	t.Run("NoStripeCalls", func(t *testing.T) {
		if n := len(rec.Calls(http.MethodPost, "/v1/customers")) + len(rec.Calls(http.MethodPost, "/v1/checkout/sessions")); n != 0 {
			t.Fatalf("%d Stripe calls for a member", n)
		}
	})
	t.Run("AdminMayNotCheckout", func(t *testing.T) {
		if _, err := inst.Server.Pool().Exec(context.Background(), "UPDATE memberships SET role = 'admin' WHERE workspace_id = $1", acct.WorkspaceID); err != nil {
			t.Fatal(err)
		}
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "needs the owner role") {
			t.Fatalf("status %d, want 403 naming the owner role: %.300s", resp.StatusCode, body)
		}
	})
	t.Run("OwnerMayCheckout", func(t *testing.T) {
		if _, err := inst.Server.Pool().Exec(context.Background(), "UPDATE memberships SET role = 'owner' WHERE workspace_id = $1", acct.WorkspaceID); err != nil {
			t.Fatal(err)
		}
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestCheckoutStripeDown(t *testing.T) {
	inst, acct, b := startLoggedIn(t, stripeEnv(deadStripe))
	resp, _ := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
	// The failed upgrade comes back to the billing page with the reason.
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/billing" {
		t.Fatalf("status %d to %q, want 303 back to /dashboard/billing", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := b.Get("/dashboard/billing")
	if !strings.Contains(body, "Stripe could not be reached, so nothing was changed") || strings.Contains(body, "127.0.0.1:1") {
		t.Fatalf("the billing page does not explain the outage plainly:\n%s", body)
	}
	if n := queryInt(t, inst, "SELECT count(*) FROM stripe_customers WHERE workspace_id = $1", acct.WorkspaceID); n != 0 {
		t.Fatal("a customer was stored although Stripe was down")
	}
}

func TestBillingOff(t *testing.T) {
	_, acct, b := startLoggedIn(t, nil)
	_, page := b.Get("/dashboard/billing")
	if !strings.Contains(page, "Billing is not enabled on this server") {
		t.Fatalf("billing-off page does not say billing is not enabled:\n%s", page)
	}
	// Setting billing up is the operator's business (the README); customers see none of it.
	for _, leak := range []string{"STRIPE_", "whsec_", "cairn admin", "/webhooks/stripe", acct.WorkspaceID.String()} {
		if strings.Contains(page, leak) {
			t.Fatalf("billing-off page shows customers the server's setup (%q):\n%s", leak, page)
		}
	}
	if strings.Contains(page, "Upgrade to") {
		t.Fatal("Upgrade buttons shown with billing off")
	}
	resp, _ := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {"pro"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("checkout with billing off: status %d, want 404", resp.StatusCode)
	}
}

func TestSyncBilling(t *testing.T) {
	mock := startStripeMock(t)
	// stripe-mock answers with fixture subscriptions; learn their price to sell it as Pro.
	fixturePrice := fixtureSubscriptionPrice(t, mock)
	env := stripeEnv(mock)
	env["STRIPE_PRICE_PRO"] = fixturePrice
	inst := servertest.Start(t, env)
	acct := inst.NewAccount(t, plan.Free)
	svc := newService(t, inst, env)

	t.Run("NoCustomer", func(t *testing.T) {
		if _, err := svc.Sync(context.Background(), acct.WorkspaceID); err == nil || !strings.Contains(err.Error(), "no Stripe customer") {
			t.Fatalf("err = %v, want no Stripe customer", err)
		}
	})
	t.Run("AppliesStripesState", func(t *testing.T) {
		linkCustomer(t, inst, acct.WorkspaceID)
		p, err := svc.Sync(context.Background(), acct.WorkspaceID)
		if err != nil {
			t.Fatal(err)
		}
		if p != plan.Pro || planOf(t, inst, acct.WorkspaceID) != "pro" {
			t.Fatalf("plan %s (stored %s) after sync, want pro", p, planOf(t, inst, acct.WorkspaceID))
		}
		if n := queryInt(t, inst, "SELECT count(*) FROM subscriptions WHERE workspace_id = $1 AND status = 'active'", acct.WorkspaceID); n != 1 {
			t.Fatalf("%d active subscriptions stored", n)
		}
	})
}

func fixtureSubscriptionPrice(t *testing.T, mock string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, mock+"/v1/subscriptions/sub_fixture", nil)
	req.SetBasicAuth(testSecretKey, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		Items struct {
			Data []struct {
				Price struct{ ID string } `json:"price"`
			} `json:"data"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &sub); err != nil || len(sub.Items.Data) == 0 {
		t.Fatalf("stripe-mock subscription fixture: %v", err)
	}
	return sub.Items.Data[0].Price.ID
}
