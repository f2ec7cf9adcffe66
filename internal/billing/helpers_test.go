package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/stripetest"
)

const (
	testSecretKey     = "sk_test_cairn"
	testWebhookSecret = "whsec_cairn_test"
	pricePro          = "price_pro_test"
	priceEnterprise   = "price_enterprise_test"
	// oldAPIVersion differs from stripe-go's, as an endpoint pinned to an older
	// version would send; the webhook must accept it.
	oldAPIVersion = "2020-08-27"
)

// stripeEnv configures billing against apiBase.
func stripeEnv(apiBase string) map[string]string {
	return map[string]string{
		"STRIPE_SECRET_KEY":       testSecretKey,
		"STRIPE_WEBHOOK_SECRET":   testWebhookSecret,
		"STRIPE_PRICE_PRO":        pricePro,
		"STRIPE_PRICE_ENTERPRISE": priceEnterprise,
		"STRIPE_API_BASE":         apiBase,
	}
}

// deadStripe is an API base where nothing listens: webhooks must be processed from
// their payload alone, so tests that only deliver webhooks point Stripe here.
const deadStripe = "http://127.0.0.1:1"

// startStripeMock runs stripe-mock (stripetest.Start).
func startStripeMock(t *testing.T) string { return stripetest.Start(t) }

type stripeRecorder = stripetest.Recorder

func newStripeRecorder(t *testing.T, target string) *stripeRecorder {
	return stripetest.NewRecorder(t, target)
}

// event builds a Stripe event's JSON around a data object.
func event(id, typ string, created time.Time, object map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": oldAPIVersion, "created": created.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1,
		"data": map[string]any{"object": object},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// subscription is a Stripe subscription object as webhooks carry it.
func subscription(id, customer, status, price string, periodEnd time.Time, meta map[string]string) map[string]any {
	if meta == nil {
		meta = map[string]string{}
	}
	return map[string]any{
		"id": id, "object": "subscription", "customer": customer, "status": status,
		"cancel_at_period_end": false, "current_period_end": periodEnd.Unix(), "metadata": meta,
		"items": map[string]any{"object": "list", "data": []any{map[string]any{
			"id": "si_" + id, "object": "subscription_item",
			"price": map[string]any{"id": price, "object": "price"},
		}}},
	}
}

func checkoutSession(workspaceID, customer, sub string) map[string]any {
	var subscription any
	if sub != "" {
		subscription = sub
	}
	return map[string]any{
		"id": "cs_test_" + uuid.NewString()[:8], "object": "checkout.session", "mode": "subscription",
		"client_reference_id": workspaceID, "customer": customer, "subscription": subscription,
		"status": "complete", "payment_status": "paid",
	}
}

func invoice(sub, customer string) map[string]any {
	return map[string]any{"id": "in_" + uuid.NewString()[:8], "object": "invoice", "subscription": sub, "customer": customer}
}

// deliver posts payload to the webhook signed with secret at ts, as Stripe does.
func deliver(t *testing.T, inst *servertest.Instance, payload []byte, secret string, ts time.Time) (int, string) {
	t.Helper()
	return post(t, inst, payload, webhookHeader(payload, secret, ts))
}

// webhookHeader is the Stripe-Signature header for payload signed with secret at ts.
func webhookHeader(payload []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts}).Header
}

// send delivers payload correctly signed now and fails the test unless it is accepted.
func send(t *testing.T, inst *servertest.Instance, payload []byte) {
	t.Helper()
	if code, body := deliver(t, inst, payload, testWebhookSecret, time.Now()); code != http.StatusOK {
		t.Fatalf("webhook: status %d: %s", code, body)
	}
}

func post(t *testing.T, inst *servertest.Instance, payload []byte, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, inst.URL+"/webhooks/stripe", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("webhook: %v", err)
	}
	return resp.StatusCode, servertest.ReadBody(t, resp)
}

// queryInt runs a counting query against the instance's database.
func queryInt(t *testing.T, inst *servertest.Instance, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := inst.Server.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func planOf(t *testing.T, inst *servertest.Instance, workspaceID uuid.UUID) string {
	t.Helper()
	var p string
	if err := inst.Server.Pool().QueryRow(context.Background(), "SELECT plan FROM workspaces WHERE id = $1", workspaceID).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func subscriptionStatus(t *testing.T, inst *servertest.Instance, id string) string {
	t.Helper()
	var s string
	err := inst.Server.Pool().QueryRow(context.Background(), "SELECT status FROM subscriptions WHERE id = $1", id).Scan(&s)
	if err == pgx.ErrNoRows {
		return "(none)"
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// planChanges counts the audit entries of plan changes made by Stripe events.
func planChanges(t *testing.T, inst *servertest.Instance, workspaceID uuid.UUID) int {
	t.Helper()
	return queryInt(t, inst, `SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'plan.changed' AND detail->>'by' = 'stripe'`, workspaceID)
}

// linkCustomer links a fresh Stripe customer to the workspace the way Stripe
// reports a finished Checkout, and returns the customer id.
func linkCustomer(t *testing.T, inst *servertest.Instance, workspaceID uuid.UUID) string {
	t.Helper()
	customer := "cus_" + uuid.NewString()[:12]
	send(t, inst, event("evt_link_"+uuid.NewString()[:8], "checkout.session.completed", time.Now(), checkoutSession(workspaceID.String(), customer, "")))
	return customer
}

func newID(prefix string) string {
	return fmt.Sprintf("%s_%s", prefix, strings.ReplaceAll(uuid.NewString(), "-", "")[:14])
}
