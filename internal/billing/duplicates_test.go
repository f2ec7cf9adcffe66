package billing_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestOneOpenCheckoutPerWorkspace: Checkout for Pro and then for Enterprise before
// either completed must not leave two sessions that could both be paid.
func TestOneOpenCheckoutPerWorkspace(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst, acct, b := startLoggedIn(t, stripeEnv(rec.URL))
	checkout := func(p string) string {
		t.Helper()
		resp, body := b.Submit("/dashboard/billing", "/dashboard/billing/checkout", url.Values{"plan": {p}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("checkout %s: %d %s", p, resp.StatusCode, body)
		}
		return resp.Header.Get("Location")
	}
	first := checkout("pro")
	sessions := rec.Calls(http.MethodPost, "/v1/checkout/sessions")
	if len(sessions) != 1 || first != sessions[0].Response["url"] {
		t.Fatalf("%d sessions, Location %q", len(sessions), first)
	}
	if expires := sessions[0].Form.Get("expires_at"); expires == "" {
		t.Fatal("the session was created without expires_at")
	}
	firstID := sessions[0].Response["id"].(string)

	t.Run("TheSamePlanAgainReusesTheOpenSession", func(t *testing.T) {
		if again := checkout("pro"); again != first {
			t.Fatalf("Location %q, want the open session %q", again, first)
		}
		if n := len(rec.Calls(http.MethodPost, "/v1/checkout/sessions")); n != 1 {
			t.Fatalf("%d sessions created, want 1", n)
		}
	})
	t.Run("AnotherPlanExpiresTheOpenSessionFirst", func(t *testing.T) {
		checkout("enterprise")
		if n := len(rec.Calls(http.MethodPost, "/v1/checkout/sessions/"+firstID+"/expire")); n != 1 {
			t.Fatalf("the open session was expired %d times, want once", n)
		}
		sessions := rec.Calls(http.MethodPost, "/v1/checkout/sessions")
		if len(sessions) != 2 || sessions[1].Form.Get("line_items[0][price]") != priceEnterprise {
			t.Fatalf("%d sessions, want a second one for Enterprise", len(sessions))
		}
		if n := queryInt(t, inst, "SELECT count(*) FROM checkout_sessions WHERE workspace_id = $1 AND plan = 'enterprise'", acct.WorkspaceID); n != 1 {
			t.Fatal("the open session on record is not the Enterprise one")
		}
	})
	t.Run("AnExpiredSessionIsNoLongerOpen", func(t *testing.T) {
		open := rec.Calls(http.MethodPost, "/v1/checkout/sessions")[1].Response["id"].(string)
		send(t, inst, event(newID("evt"), "checkout.session.expired", time.Now(), map[string]any{
			"id": open, "object": "checkout.session", "client_reference_id": acct.WorkspaceID.String(), "status": "expired",
		}))
		if n := queryInt(t, inst, "SELECT count(*) FROM checkout_sessions WHERE session_id = $1", open); n != 0 {
			t.Fatal("an expired session is still on record as open")
		}
	})
}

// TestDuplicateSubscriptionIsCancelled: when Stripe reports two live subscriptions
// for one workspace, in either order, the newest is kept, the other is cancelled
// through Stripe's API and the audit log says so.
func TestDuplicateSubscriptionIsCancelled(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst := servertest.Start(t, stripeEnv(rec.URL))
	created := time.Now().Add(-time.Hour)
	sub := func(id, customer, price string, at time.Time) map[string]any {
		s := subscription(id, customer, "active", price, time.Now().AddDate(0, 1, 0), nil)
		s["created"] = at.Unix()
		return s
	}
	for _, order := range []string{"OlderFirst", "NewerFirst"} {
		t.Run(order, func(t *testing.T) {
			acct := inst.NewAccount(t, plan.Free)
			customer := linkCustomer(t, inst, acct.WorkspaceID)
			older, newer := newID("sub"), newID("sub")
			events := [][]byte{
				event(newID("evt"), "customer.subscription.created", time.Now(), sub(older, customer, priceEnterprise, created)),
				event(newID("evt"), "customer.subscription.created", time.Now(), sub(newer, customer, pricePro, created.Add(time.Minute))),
			}
			if order == "NewerFirst" {
				events[0], events[1] = events[1], events[0]
			}
			for _, e := range events {
				send(t, inst, e)
			}
			if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
				t.Fatalf("plan %s, want pro: the newest subscription's, not the duplicate's", got)
			}
			deadline := time.Now().Add(15 * time.Second)
			for len(rec.Calls(http.MethodDelete, "/v1/subscriptions/"+older)) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the older subscription was not cancelled through Stripe's API")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n := len(rec.Calls(http.MethodDelete, "/v1/subscriptions/"+newer)); n != 0 {
				t.Fatal("the newest subscription was cancelled")
			}
			if n := queryInt(t, inst, `SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'subscription.cancelled'
				AND target_id = $2 AND detail->>'kept' = $3 AND detail->>'reason' = 'duplicate'`, acct.WorkspaceID, older, newer); n != 1 {
				t.Fatalf("%d audit entries for the cancelled duplicate, want 1", n)
			}
			// Stripe then reports it cancelled; the workspace keeps the newest's plan.
			cancelled := sub(older, customer, priceEnterprise, created)
			cancelled["status"] = "canceled"
			send(t, inst, event(newID("evt"), "customer.subscription.deleted", time.Now().Add(time.Second), cancelled))
			if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
				t.Fatalf("plan %s after the duplicate's cancellation, want pro", got)
			}
		})
	}
}
