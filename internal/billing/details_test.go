package billing_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBillingPageShowsTheAccount walks the billing page of a paying workspace
// against stripe-mock: renewal, payment method and invoices, read from Stripe once
// and then from the cache, read again after a webhook about the customer, kept
// (and said to be old) while Stripe is down, and the cancel notice.
func TestBillingPageShowsTheAccount(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	// stripe-mock's fixture invoice is a draft; make it the paid invoice a real
	// account shows, and add a draft that must stay hidden.
	rec.Rewrite(func(method, path string, body map[string]any) {
		if method != http.MethodGet || path != "/v1/invoices" {
			return
		}
		data, _ := body["data"].([]any)
		if len(data) == 0 {
			return
		}
		paid := data[0].(map[string]any)
		draft := map[string]any{}
		for k, v := range paid {
			draft[k] = v
		}
		paid["status"], paid["number"], paid["total"], paid["currency"] = "paid", "CAIRN-0001", 1000, "usd"
		paid["hosted_invoice_url"] = "https://invoice.stripe.com/i/acct_test/inv_test"
		draft["id"], draft["status"], draft["number"] = "in_draft", "draft", "CAIRN-DRAFT"
		body["data"] = []any{draft, paid}
	})
	inst, acct, b := startLoggedIn(t, stripeEnv(rec.URL))
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	sub := newID("sub")
	renews := time.Now().Add(30 * 24 * time.Hour).UTC()
	send(t, inst, event(newID("evt"), "customer.subscription.updated", time.Now(), subscription(sub, customer, "active", pricePro, renews, nil)))

	page := func(t *testing.T) string {
		t.Helper()
		status, body := b.Get("/dashboard/billing")
		if status != http.StatusOK {
			t.Fatalf("GET /dashboard/billing: %d", status)
		}
		return body
	}
	invoiceCalls := func() int { return len(rec.Calls(http.MethodGet, "/v1/invoices")) }

	t.Run("RenewalPaymentMethodAndInvoices", func(t *testing.T) {
		body := page(t)
		for _, want := range []string{
			"Renews on " + renews.Format("2 Jan 2006"),
			"Visa ending in 4242, expires 08/2030",
			`data-testid="invoices"`, "CAIRN-0001", "$10.00", "Paid",
			`href="https://invoice.stripe.com/i/acct_test/inv_test"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the billing page lacks %q", want)
			}
		}
		if strings.Contains(body, "CAIRN-DRAFT") {
			t.Error("a draft invoice is shown")
		}
		if got := invoiceCalls(); got != 1 {
			t.Fatalf("%d invoice lists asked of Stripe, want 1", got)
		}
	})
	t.Run("SecondViewComesFromTheCache", func(t *testing.T) {
		if body := page(t); !strings.Contains(body, "CAIRN-0001") {
			t.Fatal("the cached invoices are not shown")
		}
		if got := invoiceCalls(); got != 1 {
			t.Fatalf("%d invoice lists asked of Stripe, want still 1", got)
		}
	})
	t.Run("AWebhookAboutTheCustomerRefreshes", func(t *testing.T) {
		send(t, inst, event(newID("evt"), "invoice.paid", time.Now(), invoice(sub, customer)))
		page(t)
		if got := invoiceCalls(); got != 2 {
			t.Fatalf("%d invoice lists asked of Stripe after invoice.paid, want 2", got)
		}
	})
	t.Run("StripeDownShowsTheLastKnownDetails", func(t *testing.T) {
		if _, err := inst.Server.Pool().Exec(t.Context(), "UPDATE billing_details SET fetched_at = now() - interval '1 hour' WHERE workspace_id = $1", acct.WorkspaceID); err != nil {
			t.Fatal(err)
		}
		rec.SetDown(true)
		defer rec.SetDown(false)
		body := page(t)
		if !strings.Contains(body, "CAIRN-0001") || !strings.Contains(body, "Stripe could not be reached; this is how things stood on") {
			t.Fatalf("with Stripe down the page does not show the last known invoices, marked as such:\n%s", body)
		}
	})
	t.Run("StripeDownWithNothingCachedStillShowsThePage", func(t *testing.T) {
		if _, err := inst.Server.Pool().Exec(t.Context(), "DELETE FROM billing_details WHERE workspace_id = $1", acct.WorkspaceID); err != nil {
			t.Fatal(err)
		}
		rec.SetDown(true)
		defer rec.SetDown(false)
		body := page(t)
		if !strings.Contains(body, "could not be loaded from Stripe just now") || !strings.Contains(body, `data-testid="billing-plan">Pro<`) {
			t.Fatalf("with Stripe down and nothing cached the page does not say so plainly:\n%s", body)
		}
	})
	t.Run("CancelNotice", func(t *testing.T) {
		s := subscription(sub, customer, "active", pricePro, renews, nil)
		s["cancel_at_period_end"] = true
		send(t, inst, event(newID("evt"), "customer.subscription.updated", time.Now().Add(time.Second), s))
		body := page(t)
		i := strings.Index(body, `data-testid="cancel-notice"`)
		if i < 0 {
			t.Fatalf("no cancel notice:\n%s", body)
		}
		if notice := body[i:]; !strings.Contains(notice[:strings.Index(notice, "</div>")], "ends on "+renews.Format("2 Jan 2006")) {
			t.Fatalf("the cancel notice does not say when the plan ends: %s", notice[:200])
		}
	})
}

// TestBillingDetailsLeakNothingToOtherWorkspaces: the cached details are the
// workspace's own; another workspace's page shows none of them.
func TestBillingDetailsLeakNothingToOtherWorkspaces(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst, acct, b := startLoggedIn(t, stripeEnv(rec.URL))
	linkCustomer(t, inst, acct.WorkspaceID)
	if _, body := b.Get("/dashboard/billing"); !strings.Contains(body, "ending in 4242") {
		t.Fatalf("the paying workspace does not see its payment method")
	}
	other := inst.NewAccount(t, "free")
	ob := inst.NewBrowser(t)
	login(t, ob, other.Email)
	_, body := ob.Get("/dashboard/billing")
	if strings.Contains(body, "4242") || strings.Contains(body, `data-testid="payment-method"`) {
		t.Fatal("a workspace without a Stripe customer sees a payment method")
	}
	var n int
	if err := inst.Server.Pool().QueryRow(t.Context(), "SELECT count(*) FROM billing_details").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d cached details rows (%v), want only the paying workspace's", n, err)
	}
}
