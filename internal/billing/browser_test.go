package billing_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserUpgrade walks the story in Chromium: the Billing page, Upgrade,
// off to Stripe Checkout, back to Cairn, Stripe's webhook, and Pro everywhere.
// Chromium cannot reach checkout.stripe.com here, so the test answers that
// navigation itself and records where the browser was sent.
func TestBrowserUpgrade(t *testing.T) {
	rec := newStripeRecorder(t, startStripeMock(t))
	inst := servertest.Start(t, stripeEnv(rec.URL))
	acct := inst.NewAccount(t, plan.Free)
	if got := usage(t, inst, acct.Key); got.Plan != "free" || got.Requests.Limit == nil || *got.Requests.Limit != 100 {
		t.Fatalf("/v1/usage before upgrading = %+v, want Free's 100 requests", got)
	}
	ctx := servertest.NewChrome(t, 90*time.Second)

	sentTo := make(chan string, 4)
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "https://checkout.stripe.com/*"}},
	}); err != nil {
		t.Fatalf("intercept Checkout: %v", err)
	}
	go func() {
		for ev, err := range chromedp.Events(ctx, fetch.RequestPaused) {
			if err != nil {
				return
			}
			sentTo <- ev.Request.URL
			_, _ = chromedp.Call(ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: 200,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html"}},
				Body:            []byte(`<!doctype html><title>Stripe Checkout</title><h1 id="stripe-checkout">Stripe Checkout</h1>`),
			})
		}
	}()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#email`), acct.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
		chromedp.Navigate(inst.URL+"/dashboard/billing"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=upgrade-pro]`)),
	); err != nil {
		t.Fatalf("open the billing page: %v", err)
	}
	if badge, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-plan=free] [data-testid=current-plan]`))); err != nil || badge != "Current plan" {
		t.Fatalf("Free is not marked as the current plan: %q, %v", badge, err)
	}

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=upgrade-pro]`)),
		chromedp.WaitVisible(chromedp.CSS(`#stripe-checkout`)),
	); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	sessions := rec.Calls(http.MethodPost, "/v1/checkout/sessions")
	if len(sessions) != 1 {
		t.Fatalf("%d Checkout sessions created", len(sessions))
	}
	if got, want := <-sentTo, sessions[0].Response["url"]; got != want {
		t.Fatalf("the browser was sent to %s, want the Checkout session's URL %s", got, want)
	}

	// Back from Checkout before Stripe's webhook: the page waits for it.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(sessions[0].Form.Get("success_url")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=checkout-pending]`)),
	); err != nil {
		t.Fatalf("return from Checkout: %v", err)
	}
	customer := sessions[0].Form.Get("customer")
	send(t, inst, event(newID("evt"), "customer.subscription.updated", time.Now(),
		subscription(newID("sub"), customer, "active", pricePro, time.Now().AddDate(0, 1, 0), nil)))
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid=checkout-done]`))); err != nil {
		t.Fatalf("the return page did not notice the subscription: %v", err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(inst.URL+"/dashboard"), chromedp.WaitVisible(chromedp.CSS(`[data-testid=plan-badge]`))); err != nil {
		t.Fatal(err)
	}
	if badge, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=plan-badge]`))); err != nil || badge != "Pro" {
		t.Fatalf("dashboard plan badge %q (%v), want Pro", badge, err)
	}

	// The plan reaches the key cache through NOTIFY, asynchronously; wait for it.
	got := usage(t, inst, acct.Key)
	for deadline := time.Now().Add(10 * time.Second); got.Plan != "pro" && time.Now().Before(deadline); got = usage(t, inst, acct.Key) {
		time.Sleep(20 * time.Millisecond)
	}
	if got.Plan != "pro" || got.Requests.Limit != nil || got.RateLimit.Limit == nil ||
		*got.RateLimit.Limit != 120 || got.Documents.Limit == nil || *got.Documents.Limit != 50_000 {
		t.Fatalf("/v1/usage = %+v, want Pro limits (unlimited requests, 120 a minute, 50,000 documents)", got)
	}
}

// usageBody is the part of GET /v1/usage the billing tests read.
type usageBody struct {
	Plan     string
	Requests struct {
		Limit *int64 `json:"limit"`
	} `json:"requests"`
	RateLimit struct {
		Limit *int64 `json:"limit"`
	} `json:"rate_limit"`
	Documents struct {
		Limit *int64 `json:"limit"`
	} `json:"documents"`
}

func usage(t *testing.T, inst *servertest.Instance, key string) usageBody {
	t.Helper()
	resp := inst.Do(t, http.MethodGet, "/v1/usage", key, "")
	body := servertest.ReadBody(t, resp)
	var u usageBody
	if err := json.Unmarshal([]byte(body), &u); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/usage: %d %s (%v)", resp.StatusCode, body, err)
	}
	return u
}
