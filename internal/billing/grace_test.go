package billing_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func parseEvent(t *testing.T, payload []byte) stripe.Event {
	t.Helper()
	var ev stripe.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// graceFixture is a workspace with a Stripe customer, and a billing service on its
// database whose clock the test moves.
type graceFixture struct {
	inst     *servertest.Instance
	acct     servertest.Account
	customer string
	svc      *billing.Service
	clk      *clock
}

func newGraceFixture(t *testing.T) graceFixture {
	t.Helper()
	f := graceFixture{inst: servertest.Start(t, stripeEnv(deadStripe)), clk: &clock{now: time.Now()}}
	f.acct = f.inst.NewAccount(t, plan.Free)
	f.customer = linkCustomer(t, f.inst, f.acct.WorkspaceID)
	f.svc = newService(t, f.inst, stripeEnv(deadStripe))
	f.svc.SetClock(f.clk.Now)
	return f
}

// newService is a billing service of its own on the instance's database.
func newService(t *testing.T, inst *servertest.Instance, env map[string]string) *billing.Service {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return billing.New(inst.Server.Pool(), cfg, slog.New(slog.DiscardHandler))
}

func TestGracePeriod(t *testing.T) {
	f := newGraceFixture(t)
	inst, acct, customer, svc, clk := f.inst, f.acct, f.customer, f.svc, f.clk
	ctx := context.Background()
	sub := newID("sub")
	failedAt := clk.Now().Add(-time.Minute)
	for _, p := range [][]byte{
		event(newID("evt"), "customer.subscription.created", failedAt.Add(-time.Hour), subscription(sub, customer, "active", pricePro, failedAt.AddDate(0, 1, 0), nil)),
		event(newID("evt"), "customer.subscription.updated", failedAt, subscription(sub, customer, "past_due", pricePro, failedAt.AddDate(0, 1, 0), nil)),
	} {
		if _, err := svc.ApplyEvent(ctx, parseEvent(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Unix(failedAt.Unix(), 0).Add(billing.GracePeriod)

	t.Run("PlanKeptDuringGrace", func(t *testing.T) {
		clk.Set(deadline.Add(-time.Second))
		if n, err := svc.ExpireGraces(ctx); err != nil || n != 0 {
			t.Fatalf("ExpireGraces = %d, %v before the deadline", n, err)
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("plan %s, want pro", got)
		}
	})
	t.Run("RepeatedPastDueDoesNotExtendGrace", func(t *testing.T) {
		later := failedAt.Add(3 * 24 * time.Hour)
		if _, err := svc.ApplyEvent(ctx, parseEvent(t, event(newID("evt"), "customer.subscription.updated", later,
			subscription(sub, customer, "past_due", pricePro, failedAt.AddDate(0, 1, 0), nil)))); err != nil {
			t.Fatal(err)
		}
		st, err := svc.Status(ctx, acct.WorkspaceID)
		if err != nil {
			t.Fatal(err)
		}
		live, ok := st.Live()
		if !ok || live.GraceUntil == nil || !live.GraceUntil.Equal(deadline) {
			t.Fatalf("grace until %v, want %v", live.GraceUntil, deadline)
		}
	})
	t.Run("SweeperDowngradesAfterDeadline", func(t *testing.T) {
		clk.Set(deadline)
		if n, err := svc.ExpireGraces(ctx); err != nil || n != 1 {
			t.Fatalf("ExpireGraces = %d, %v; want 1", n, err)
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "free" {
			t.Fatalf("plan %s after the grace period, want free", got)
		}
		if n, err := svc.ExpireGraces(ctx); err != nil || n != 0 {
			t.Fatalf("second sweep handled %d (%v), want 0", n, err)
		}
	})
	t.Run("PaymentRestoresPlan", func(t *testing.T) {
		if _, err := svc.ApplyEvent(ctx, parseEvent(t, event(newID("evt"), "invoice.paid", deadline, invoice(sub, customer)))); err != nil {
			t.Fatal(err)
		}
		if got := planOf(t, inst, acct.WorkspaceID); got != "pro" {
			t.Fatalf("plan %s after payment, want pro", got)
		}
	})
}

func TestGraceExpiresWhenStatusIsRead(t *testing.T) {
	f := newGraceFixture(t)
	inst, acct, customer, svc, clk := f.inst, f.acct, f.customer, f.svc, f.clk
	ctx := context.Background()
	sub := newID("sub")
	at := clk.Now().Add(-time.Minute)
	if _, err := svc.ApplyEvent(ctx, parseEvent(t, event(newID("evt"), "customer.subscription.created", at,
		subscription(sub, customer, "past_due", priceEnterprise, at.AddDate(0, 1, 0), nil)))); err != nil {
		t.Fatal(err)
	}
	if got := planOf(t, inst, acct.WorkspaceID); got != "enterprise" {
		t.Fatalf("plan %s, want enterprise during grace", got)
	}
	clk.Set(at.Add(billing.GracePeriod + time.Second))
	st, err := svc.Status(ctx, acct.WorkspaceID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Plan != plan.Free || planOf(t, inst, acct.WorkspaceID) != "free" {
		t.Fatalf("status plan %s, stored %s; want free once the grace period is over", st.Plan, planOf(t, inst, acct.WorkspaceID))
	}
}
