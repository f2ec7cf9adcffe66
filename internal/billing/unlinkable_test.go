package billing_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestUnlinkableCheckoutIsAnsweredAndCounted: a completed Checkout that names a
// workspace Cairn cannot link it to is answered 200 (Stripe would otherwise retry it
// for three days), recorded as unlinkable, logged and counted, and changes no plan.
func TestUnlinkableCheckoutIsAnsweredAndCounted(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	a, b := inst.NewAccount(t, plan.Free), inst.NewAccount(t, plan.Free)
	custA := linkCustomer(t, inst, a.WorkspaceID)
	for _, tc := range []struct {
		name    string
		session map[string]any
		outcome string
	}{
		{"AnotherWorkspacesCustomer", checkoutSession(b.WorkspaceID.String(), custA, newID("sub")), "unlinkable"},
		{"UnknownWorkspace", checkoutSession(uuid.NewString(), "cus_"+uuid.NewString()[:12], newID("sub")), "unlinkable"},
		{"ReferenceNotAWorkspaceID", checkoutSession("order-42", "cus_"+uuid.NewString()[:12], ""), "unlinkable"},
		{"NoCustomer", checkoutSession(b.WorkspaceID.String(), "", ""), "unlinkable"},
		{"NoReferenceIsNotCairns", checkoutSession("", "cus_"+uuid.NewString()[:12], ""), "ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := newID("evt")
			if code, body := deliver(t, inst, event(id, "checkout.session.completed", time.Now(), tc.session), testWebhookSecret, time.Now()); code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", code, body)
			}
			if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE id = $1 AND outcome = $2", id, tc.outcome); n != 1 {
				t.Fatalf("the event is not recorded as %s", tc.outcome)
			}
		})
	}
	if got := planOf(t, inst, b.WorkspaceID); got != "free" {
		t.Fatalf("workspace b's plan is %s, want free", got)
	}
	if n := queryInt(t, inst, "SELECT count(*) FROM stripe_customers WHERE workspace_id = $1", b.WorkspaceID); n != 0 {
		t.Fatal("workspace b was linked to a customer")
	}
	body := []byte(inst.Metrics(t))
	m := regexp.MustCompile(`cairn_stripe_events_total\{outcome="unlinkable",type="checkout.session.completed"\} (\d+)`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no unlinkable count in /metrics")
	}
	if n, _ := strconv.Atoi(string(m[1])); n != 4 {
		t.Fatalf("unlinkable checkouts counted %d, want 4", n)
	}
	if logs := inst.Logs(); !regexp.MustCompile(`cannot be linked to a workspace.*another workspace`).MatchString(logs) {
		t.Fatal("the unlinkable checkout was not logged with its reason")
	}
}
