package billing_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

func TestWebhookSignature(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	payload := event(newID("evt"), "customer.subscription.created", time.Now(),
		subscription(newID("sub"), customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil))
	good := func() string {
		return webhookHeader(payload, testWebhookSecret, time.Now())
	}

	cases := []struct {
		name      string
		payload   []byte
		signature string
	}{
		{"MissingHeader", payload, ""},
		{"WrongSecret", payload, webhookHeader(payload, "whsec_someone_else", time.Now())},
		{"StaleTimestamp", payload, webhookHeader(payload, testWebhookSecret, time.Now().Add(-6*time.Minute))},
		{"FutureTimestamp", payload, webhookHeader(payload, testWebhookSecret, time.Now().Add(6*time.Minute))},
		{"MalformedHeader", payload, "not-a-signature"},
		{"TamperedBody", []byte(strings.Replace(string(payload), pricePro, priceEnterprise, 1)), good()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, inst, tc.payload, tc.signature)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", code, body)
			}
			if !strings.Contains(body, `"invalid_request"`) {
				t.Fatalf("body %s, want the invalid_request error shape", body)
			}
			if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE type <> 'checkout.session.completed'"); n != 0 {
				t.Fatalf("%d events recorded from a rejected delivery", n)
			}
			if got := planOf(t, inst, acct.WorkspaceID); got != "free" {
				t.Fatalf("plan %s after a rejected delivery, want free", got)
			}
		})
	}

	t.Run("WithinToleranceAccepted", func(t *testing.T) {
		code, body := deliver(t, inst, payload, testWebhookSecret, time.Now().Add(-4*time.Minute))
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("plan %s, want pro", got)
		}
	})
}

func TestWebhookDuplicatesApplyOnce(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	workspaces := workspace.NewService(inst.Server.Pool(), inst.Config.Plans)

	for _, concurrent := range []bool{false, true} {
		name := map[bool]string{false: "Sequential", true: "Concurrent"}[concurrent]
		t.Run(name, func(t *testing.T) {
			acct := inst.NewAccount(t, plan.Free)
			customer := linkCustomer(t, inst, acct.WorkspaceID)
			id := newID("evt")
			payload := event(id, "customer.subscription.created", time.Now(),
				subscription(newID("sub"), customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil))
			deliverFive := func() {
				codes := make([]int, 5)
				var wg sync.WaitGroup
				for i := range codes {
					do := func() { codes[i], _ = deliver(t, inst, payload, testWebhookSecret, time.Now()) }
					if concurrent {
						wg.Add(1)
						go func() { defer wg.Done(); do() }()
					} else {
						do()
					}
				}
				wg.Wait()
				for i, c := range codes {
					if c != http.StatusOK {
						t.Fatalf("delivery %d: status %d, want 200", i, c)
					}
				}
			}

			deliverFive()
			if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE id = $1", id); n != 1 {
				t.Fatalf("event stored %d times", n)
			}
			if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
				t.Fatalf("plan %s, want pro", got)
			}
			// Re-applying this event would be harmless now, so move the plan by hand:
			// a redelivery must leave it alone.
			if err := workspaces.SetPlan(context.Background(), acct.WorkspaceID, plan.Enterprise, nil, "admin"); err != nil {
				t.Fatal(err)
			}
			deliverFive()
			if got := planOf(t, inst, acct.WorkspaceID); got != "enterprise" {
				t.Fatalf("plan %s after redeliveries, want enterprise: a duplicate was applied again", got)
			}
			if n := planChanges(t, inst, acct.WorkspaceID); n != 1 {
				t.Fatalf("%d plan changes by Stripe, want exactly 1", n)
			}
		})
	}
}

// lifecycleStep is one event of a subscription's life and what it says.
type lifecycleStep struct {
	typ, status string
}

func TestWebhookLifecycleInEveryOrder(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	lifecycle := []lifecycleStep{
		{"customer.subscription.created", "active"},
		{"customer.subscription.updated", "past_due"},
		{"customer.subscription.updated", "active"},
		{"customer.subscription.deleted", "canceled"},
	}
	cases := []struct {
		name       string
		steps      []lifecycleStep
		wantPlan   string
		wantStatus string
	}{
		// The newest event is the deletion: Free, whatever order the four arrive in.
		{"EndsCanceled", lifecycle, "free", "canceled"},
		// Without it the newest says active again: Pro and no grace left over.
		{"EndsActive", lifecycle[:3], "pro", "active"},
	}
	for _, tc := range cases {
		for _, order := range permutations(len(tc.steps)) {
			t.Run(fmt.Sprintf("%s/%v", tc.name, order), func(t *testing.T) {
				acct := inst.NewAccount(t, plan.Free)
				customer := linkCustomer(t, inst, acct.WorkspaceID)
				sub := newID("sub")
				start := time.Now().Add(-time.Hour)
				payloads := make([][]byte, len(tc.steps))
				for i, s := range tc.steps {
					created := start.Add(time.Duration(i) * time.Minute) // Stripe's created has 1 s resolution
					payloads[i] = event(newID("evt"), s.typ, created,
						subscription(sub, customer, s.status, pricePro, created.AddDate(0, 1, 0), nil))
				}
				for _, i := range order {
					send(t, inst, payloads[i])
				}
				if got := planOf(t, inst, acct.WorkspaceID); got != tc.wantPlan {
					t.Fatalf("plan %s, want %s", got, tc.wantPlan)
				}
				if got := subscriptionStatus(t, inst, sub); got != tc.wantStatus {
					t.Fatalf("subscription status %s, want %s", got, tc.wantStatus)
				}
				if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE workspace_id = $1 AND type LIKE 'customer.subscription.%'", acct.WorkspaceID); n != len(tc.steps) {
					t.Fatalf("%d events recorded, want %d", n, len(tc.steps))
				}
			})
		}
	}
}

func TestWebhookLifecycleConcurrent(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	sub := newID("sub")
	start := time.Now().Add(-time.Hour)
	statuses := []string{"active", "past_due", "active", "canceled"}
	var wg sync.WaitGroup
	for i, status := range statuses {
		created := start.Add(time.Duration(i) * time.Minute)
		payload := event(newID("evt"), "customer.subscription.updated", created,
			subscription(sub, customer, status, pricePro, created.AddDate(0, 1, 0), nil))
		for range 3 { // each delivered three times, all at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, body := deliver(t, inst, payload, testWebhookSecret, time.Now()); code != http.StatusOK {
					t.Errorf("status %d: %s", code, body)
				}
			}()
		}
	}
	wg.Wait()
	if got, status := planOf(t, inst, acct.WorkspaceID), subscriptionStatus(t, inst, sub); got != "free" || status != "canceled" {
		t.Fatalf("plan %s, status %s; want free and canceled, as the newest event says", got, status)
	}
}

// TestPlanChangeReachesOtherReplica delivers the webhook to one replica and watches
// another one's /v1/usage, whose key cache holds the old plan.
func TestPlanChangeReachesOtherReplica(t *testing.T) {
	a := servertest.Start(t, stripeEnv(deadStripe))
	b := servertest.StartOn(t, a.DatabaseURL, stripeEnv(deadStripe))
	acct := a.NewAccount(t, plan.Free)
	customer := linkCustomer(t, a, acct.WorkspaceID)
	if got := usage(t, b, acct.Key); got.Plan != "free" {
		t.Fatalf("replica B plan %s before, want free", got.Plan)
	}
	send(t, a, event(newID("evt"), "customer.subscription.created", time.Now(),
		subscription(newID("sub"), customer, "active", priceEnterprise, time.Now().AddDate(0, 1, 0), nil)))
	applied := time.Now()
	got := usage(t, b, acct.Key)
	for deadline := time.Now().Add(10 * time.Second); got.Plan != "enterprise" && time.Now().Before(deadline); got = usage(t, b, acct.Key) {
		time.Sleep(5 * time.Millisecond)
	}
	if got.Plan != "enterprise" || got.RateLimit.Limit == nil || *got.RateLimit.Limit != 600 {
		t.Fatalf("replica B /v1/usage = %+v, want Enterprise limits", got)
	}
	t.Logf("replica B saw the new plan %v after the webhook returned", time.Since(applied).Round(time.Millisecond))
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestWebhookUnknownCustomer(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	customer, sub := newID("cus"), newID("sub")
	id := newID("evt")
	send(t, inst, event(id, "customer.subscription.created", time.Now(),
		subscription(sub, customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil)))

	t.Run("RecordedAnd200", func(t *testing.T) {
		if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE id = $1 AND outcome = 'unknown_customer' AND workspace_id IS NULL", id); n != 1 {
			t.Fatal("the event was not recorded as unknown_customer")
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "free" {
			t.Fatalf("plan %s, want free", got)
		}
	})
	t.Run("AppliedOnceCheckoutLinksTheCustomer", func(t *testing.T) {
		// Stripe does not order deliveries: the subscription can arrive before the
		// checkout that tells whose it is, and must not be lost.
		send(t, inst, event(newID("evt"), "checkout.session.completed", time.Now(), checkoutSession(acct.WorkspaceID.String(), customer, sub)))
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("plan %s, want pro", got)
		}
	})
}

func TestWebhookMetadataLinksWorkspace(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	send(t, inst, event(newID("evt"), "customer.subscription.created", time.Now(),
		subscription(newID("sub"), newID("cus"), "active", priceEnterprise, time.Now().AddDate(0, 1, 0),
			map[string]string{"workspace_id": acct.WorkspaceID.String()})))
	if got := planOf(t, inst, acct.WorkspaceID); got != "enterprise" {
		t.Fatalf("plan %s, want enterprise from subscription_data.metadata.workspace_id", got)
	}
}

func TestWebhookStatusMapsToPlan(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	cases := []struct {
		status, price, want string
	}{
		{"active", pricePro, "pro"},
		{"trialing", priceEnterprise, "enterprise"},
		{"past_due", pricePro, "pro"}, // within the grace period
		{"canceled", pricePro, "free"},
		{"unpaid", pricePro, "free"},
		{"incomplete_expired", pricePro, "free"},
		{"paused", pricePro, "free"},
		{"incomplete", pricePro, "free"},
		{"active", "price_not_ours", "free"},
	}
	for _, tc := range cases {
		t.Run(tc.status+"/"+tc.price, func(t *testing.T) {
			acct := inst.NewAccount(t, plan.Free)
			customer := linkCustomer(t, inst, acct.WorkspaceID)
			sub := newID("sub")
			// Start from a paid plan so that the downgrades show.
			send(t, inst, event(newID("evt"), "customer.subscription.created", time.Now().Add(-time.Minute),
				subscription(sub, customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil)))
			send(t, inst, event(newID("evt"), "customer.subscription.updated", time.Now(),
				subscription(sub, customer, tc.status, tc.price, time.Now().AddDate(0, 1, 0), nil)))
			if got := planOf(t, inst, acct.WorkspaceID); got != tc.want {
				t.Fatalf("plan %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("PausedAndResumedEvents", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Free)
		customer := linkCustomer(t, inst, acct.WorkspaceID)
		sub := newID("sub")
		now := time.Now()
		send(t, inst, event(newID("evt"), "customer.subscription.paused", now.Add(-time.Minute),
			subscription(sub, customer, "paused", pricePro, now.AddDate(0, 1, 0), nil)))
		if got := planOf(t, inst, acct.WorkspaceID); got != "free" {
			t.Fatalf("paused: plan %s, want free", got)
		}
		send(t, inst, event(newID("evt"), "customer.subscription.resumed", now,
			subscription(sub, customer, "active", pricePro, now.AddDate(0, 1, 0), nil)))
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("resumed: plan %s, want pro", got)
		}
	})
}

func TestWebhookInvoices(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	sub := newID("sub")
	now := time.Now()
	send(t, inst, event(newID("evt"), "customer.subscription.created", now.Add(-3*time.Minute),
		subscription(sub, customer, "active", pricePro, now.AddDate(0, 1, 0), nil)))

	t.Run("PaymentFailedStartsGrace", func(t *testing.T) {
		send(t, inst, event(newID("evt"), "invoice.payment_failed", now.Add(-2*time.Minute), invoice(sub, customer)))
		if got := subscriptionStatus(t, inst, sub); got != "past_due" {
			t.Fatalf("status %s, want past_due", got)
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("plan %s during grace, want pro", got)
		}
		b := inst.NewBrowser(t)
		login(t, b, acct.Email)
		_, page := b.Get("/dashboard")
		if !strings.Contains(page, "Stripe could not collect the last payment for Pro") || !strings.Contains(page, "stays active until") {
			t.Fatalf("no grace banner on the dashboard:\n%s", page)
		}
	})
	t.Run("StaleInvoiceIgnored", func(t *testing.T) {
		send(t, inst, event(newID("evt"), "invoice.paid", now.Add(-150*time.Second), invoice(sub, customer)))
		if got := subscriptionStatus(t, inst, sub); got != "past_due" {
			t.Fatalf("status %s after an invoice older than the watermark, want past_due", got)
		}
	})
	t.Run("PaidEndsGrace", func(t *testing.T) {
		send(t, inst, event(newID("evt"), "invoice.paid", now.Add(-time.Minute), invoice(sub, customer)))
		if got := subscriptionStatus(t, inst, sub); got != "active" {
			t.Fatalf("status %s, want active", got)
		}
		if n := queryInt(t, inst, "SELECT count(*) FROM subscriptions WHERE id = $1 AND grace_until IS NULL", sub); n != 1 {
			t.Fatal("grace deadline left behind after payment")
		}
	})
	t.Run("UnknownSubscriptionRecorded", func(t *testing.T) {
		id := newID("evt")
		send(t, inst, event(id, "invoice.paid", now, invoice(newID("sub"), customer)))
		if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE id = $1", id); n != 1 {
			t.Fatal("event not recorded")
		}
	})
}

func TestWebhookTransientFailureAsksForRetry(t *testing.T) {
	inst := servertest.Start(t, stripeEnv(deadStripe))
	acct := inst.NewAccount(t, plan.Free)
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	payload := event(newID("evt"), "customer.subscription.created", time.Now(),
		subscription(newID("sub"), customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil))
	exec := func(sql string) {
		if _, err := inst.Server.Pool().Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	// Break the subscriptions table for a moment, as a failing database would.
	exec("ALTER TABLE subscriptions RENAME TO subscriptions_away")
	code, body := deliver(t, inst, payload, testWebhookSecret, time.Now())
	exec("ALTER TABLE subscriptions_away RENAME TO subscriptions")
	if code != http.StatusInternalServerError {
		t.Fatalf("status %d during the failure, want 500 so Stripe retries: %s", code, body)
	}
	if strings.Contains(body, "subscriptions") {
		t.Fatalf("internal detail leaked: %s", body)
	}
	if n := queryInt(t, inst, "SELECT count(*) FROM stripe_events WHERE type = 'customer.subscription.created'"); n != 0 {
		t.Fatal("a failed event was recorded, so Stripe's retry would be dropped")
	}
	send(t, inst, payload) // Stripe's retry
	if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
		t.Fatalf("plan %s after the retry, want pro", got)
	}
}

func TestWebhookBillingOff(t *testing.T) {
	inst := servertest.Start(t, nil)
	code, _ := post(t, inst, []byte(`{}`), "t=1,v1=00")
	if code != http.StatusNotFound {
		t.Fatalf("status %d, want 404 with billing off", code)
	}
}

// login logs a servertest account in through the form.
func login(t *testing.T, b *servertest.Browser, email string) {
	t.Helper()
	resp, body := b.Submit("/login", "/login", map[string][]string{"email": {email}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d: %s", resp.StatusCode, body)
	}
}

func TestDowngradeLosesNothing(t *testing.T) {
	env := stripeEnv(deadStripe)
	env["CAIRN_PLAN_FREE_DOCUMENTS"] = "1"
	inst := servertest.Start(t, env)
	acct := inst.NewAccount(t, plan.Free)
	customer := linkCustomer(t, inst, acct.WorkspaceID)
	sub := newID("sub")
	send(t, inst, event(newID("evt"), "customer.subscription.created", time.Now().Add(-time.Minute),
		subscription(sub, customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil)))

	b := inst.NewBrowser(t)
	login(t, b, acct.Email)
	for i := range 4 { // with the servertest key: 5 keys, over Free's 2
		if resp, body := b.Submit("/dashboard/keys", "/dashboard/keys", map[string][]string{"name": {fmt.Sprintf("key %d", i)}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("create key on Pro: %d: %s", resp.StatusCode, body)
		}
	}
	for i := range 3 {
		resp := inst.Do(t, http.MethodPost, "/v1/documents", acct.Key, fmt.Sprintf(`{"documents":[{"id":"doc-%d","text":"Stored while on Pro, number %d."}]}`, i, i))
		if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("store a document on Pro: %d: %s", resp.StatusCode, body)
		}
	}

	send(t, inst, event(newID("evt"), "customer.subscription.deleted", time.Now(),
		subscription(sub, customer, "canceled", pricePro, time.Now(), nil)))
	if got := planOf(t, inst, acct.WorkspaceID); got != "free" {
		t.Fatalf("plan %s after cancellation, want free", got)
	}

	t.Run("KeysKeepWorking", func(t *testing.T) {
		_, page := b.Get("/dashboard/keys")
		if n := strings.Count(page, `data-key-id=`); n != 5 {
			t.Fatalf("%d keys listed after the downgrade, want 5", n)
		}
		if resp := inst.Do(t, http.MethodGet, "/v1/me", acct.Key, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("/v1/me with a key from before the downgrade: %d", resp.StatusCode)
		}
	})
	t.Run("DocumentsKept", func(t *testing.T) {
		resp := inst.Do(t, http.MethodGet, "/v1/documents/doc-2", acct.Key, "")
		if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Stored while on Pro") {
			t.Fatalf("a document stored on Pro: %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("NoNewKeyAndTheDashboardSaysWhy", func(t *testing.T) {
		resp, body := b.Submit("/dashboard/keys", "/dashboard/keys", map[string][]string{"name": {"one more"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
		for _, want := range []string{"The Free plan allows 2 active API keys and this workspace has 5", "They all keep working", "revoke 4", "upgrade to Pro"} {
			if !strings.Contains(body, want) {
				t.Fatalf("keys page lacks %q:\n%s", want, body)
			}
		}
		_, page := b.Get("/dashboard/billing")
		for _, want := range []string{
			"This workspace has 5 active API keys and the Free plan allows 2",
			"This workspace stores 3 documents and the Free plan allows 1",
		} {
			if !strings.Contains(page, want) {
				t.Fatalf("billing page does not explain what is over the caps (%q):\n%s", want, page)
			}
		}
	})
	t.Run("NoNewDocument", func(t *testing.T) {
		resp := inst.Do(t, http.MethodPost, "/v1/documents", acct.Key, `{"documents":[{"text":"One too many."}]}`)
		if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Free plan allows 1 documents") {
			t.Fatalf("new document after the downgrade: %d: %s", resp.StatusCode, body)
		}
	})
}
