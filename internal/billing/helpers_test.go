package billing_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/testbin"
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

// startStripeMock runs Stripe's own stripe-mock on free loopback ports and returns
// its HTTP base URL.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin := testbin.Find(t, "stripe-mock", "make stripe-mock, or go install github.com/stripe/stripe-mock@v0.203.0")
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start listening within 30s")
	}
	return ""
}

// recordedCall is one request stripe-go made to the Stripe API, and its answer.
type recordedCall struct {
	Method, Path   string
	IdempotencyKey string
	Form           url.Values
	Response       map[string]any
}

// stripeRecorder sits between Cairn and stripe-mock and records every call, so tests
// can check what was sent (stripe-mock itself keeps no state).
type stripeRecorder struct {
	URL   string
	mu    sync.Mutex
	calls []recordedCall
	// rewrite, when set, may change a JSON answer before Cairn sees it, for states
	// stripe-mock's fixtures never take (a paid invoice, say).
	rewrite func(method, path string, body map[string]any)
	// down makes every call fail with 500, as an outage would.
	down bool
}

// Rewrite sets a function that may change stripe-mock's JSON answers.
func (r *stripeRecorder) Rewrite(fn func(method, path string, body map[string]any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rewrite = fn
}

// SetDown makes Stripe fail every call (true) or answer again (false).
func (r *stripeRecorder) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func newStripeRecorder(t *testing.T, target string) *stripeRecorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &stripeRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		call := resp.Request.Context().Value(callKey{}).(*recordedCall)
		_ = json.Unmarshal(body, &call.Response)
		r.mu.Lock()
		rewrite := r.rewrite
		r.calls = append(r.calls, *call)
		r.mu.Unlock()
		if rewrite != nil && call.Response != nil {
			rewrite(call.Method, call.Path, call.Response)
			if body, err = json.Marshal(call.Response); err != nil {
				return err
			}
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if req.Method == http.MethodGet {
			form = req.URL.Query()
		}
		call := &recordedCall{Method: req.Method, Path: req.URL.Path, IdempotencyKey: req.Header.Get("Idempotency-Key"), Form: form}
		r.mu.Lock()
		down := r.down
		if down {
			r.calls = append(r.calls, *call)
		}
		r.mu.Unlock()
		if down {
			http.Error(w, `{"error":{"type":"api_error","message":"down for the test"}}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), callKey{}, call)))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

type callKey struct{}

// Calls returns the recorded calls to method and path.
func (r *stripeRecorder) Calls(method, path string) []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recordedCall
	for _, c := range r.calls {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
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
