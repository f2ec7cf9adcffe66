package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Return paths under BASE_URL for Checkout and the Customer Portal.
const (
	PathBilling = "/dashboard/billing"
	PathSuccess = "/dashboard/billing/success"
	PathCancel  = "/dashboard/billing/cancel"
)

var (
	errBillingOff = apperr.New(apperr.NotFound, "Billing is off on this server; an operator can change plans with `cairn admin set-plan`.")
	errNotManager = apperr.New(apperr.Forbidden, "Only the workspace's owner can change its billing.")
)

// Checkout starts a Stripe Checkout session in which the workspace subscribes to
// plan p, and returns the session's URL. It creates the workspace's Stripe
// customer on first use. It returns forbidden for members who may not manage
// billing, invalid_request for a plan not for sale, conflict when the workspace
// already pays through a subscription (plan changes then go through the portal)
// and unavailable when Stripe cannot be reached.
func (s *Service) Checkout(ctx context.Context, ws workspace.Workspace, email string, p plan.ID) (string, error) {
	if !s.Enabled() {
		return "", errBillingOff
	}
	if !ws.Allows(workspace.RoleOwner) {
		return "", errNotManager
	}
	price := s.priceForPlan(p)
	if price == "" {
		return "", apperr.Field("plan", "choose pro or enterprise")
	}
	st, err := s.status(ctx, ws.ID)
	if err != nil {
		return "", err
	}
	if live, ok := st.Live(); ok {
		return "", apperr.New(apperr.Conflict, "This workspace already has a %s subscription; change or cancel it under Manage billing.",
			s.plans.Get(live.Plan).Name)
	}
	customer, err := s.ensureCustomer(ctx, ws, email)
	if err != nil {
		return "", err
	}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(ws.ID.String()),
		LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		SuccessURL:        stripe.String(s.baseURL + PathSuccess + "?session_id={CHECKOUT_SESSION_ID}"),
		CancelURL:         stripe.String(s.baseURL + PathCancel),
		SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
			Metadata: map[string]string{"workspace_id": ws.ID.String()},
		},
		AllowPromotionCodes: stripe.Bool(true),
	}
	params.AddMetadata("workspace_id", ws.ID.String())
	params.Context = ctx
	// A fresh key per attempt: stripe-go's own retries of this POST reuse it.
	params.SetIdempotencyKey("cairn-checkout-" + uuid.NewString())
	sess, err := s.stripe.CheckoutSessions.New(params)
	if err != nil {
		return "", stripeError("billing: checkout session", err)
	}
	return sess.URL, nil
}

// ensureCustomer returns the workspace's Stripe customer, creating it the first
// time. Concurrent first checkouts send the same idempotency key, so Stripe
// creates one customer, and the first row stored wins either way.
func (s *Service) ensureCustomer(ctx context.Context, ws workspace.Workspace, email string) (string, error) {
	id, err := s.q.StripeCustomerGet(ctx, ws.ID)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("billing: customer: %w", err)
	}
	params := &stripe.CustomerParams{Email: stripe.String(email), Name: stripe.String(ws.Name)}
	params.AddMetadata("workspace_id", ws.ID.String())
	params.Context = ctx
	// Stripe refuses a key reused with different parameters, so the key covers them.
	sum := sha256.Sum256([]byte(ws.ID.String() + "\x00" + ws.Name + "\x00" + email))
	params.SetIdempotencyKey("cairn-customer-" + hex.EncodeToString(sum[:16]))
	c, err := s.stripe.Customers.New(params)
	if err != nil {
		return "", stripeError("billing: create customer", err)
	}
	if err := s.q.StripeCustomerInsert(ctx, dbq.StripeCustomerInsertParams{WorkspaceID: ws.ID, CustomerID: c.ID}); err != nil {
		return "", fmt.Errorf("billing: store customer: %w", err)
	}
	id, err = s.q.StripeCustomerGet(ctx, ws.ID)
	if err != nil {
		return "", fmt.Errorf("billing: customer %s was not stored: %w", c.ID, err)
	}
	return id, nil
}

// Portal returns the URL of a Stripe Customer Portal session for the workspace,
// which comes back to the billing page. It returns forbidden for members who may
// not manage billing, conflict when the workspace has never checked out and
// unavailable when Stripe cannot be reached.
func (s *Service) Portal(ctx context.Context, ws workspace.Workspace) (string, error) {
	if !s.Enabled() {
		return "", errBillingOff
	}
	if !ws.Allows(workspace.RoleOwner) {
		return "", errNotManager
	}
	customer, err := s.q.StripeCustomerGet(ctx, ws.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", apperr.New(apperr.Conflict, "This workspace has no Stripe billing yet; choose a plan first.")
	}
	if err != nil {
		return "", fmt.Errorf("billing: customer: %w", err)
	}
	params := &stripe.BillingPortalSessionParams{
		Customer:  stripe.String(customer),
		ReturnURL: stripe.String(s.baseURL + PathBilling),
	}
	params.Context = ctx
	params.SetIdempotencyKey("cairn-portal-" + uuid.NewString())
	sess, err := s.stripe.BillingPortalSessions.New(params)
	if err != nil {
		return "", stripeError("billing: portal session", err)
	}
	return sess.URL, nil
}

// Sync re-reads the workspace's subscriptions from Stripe and applies them as of
// now, for repair when webhooks were lost. It returns the plan in force afterwards.
func (s *Service) Sync(ctx context.Context, workspaceID uuid.UUID) (plan.ID, error) {
	if !s.Enabled() {
		return "", errBillingOff
	}
	customer, err := s.q.StripeCustomerGet(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", apperr.New(apperr.NotFound, "This workspace has no Stripe customer; it has never checked out.")
	}
	if err != nil {
		return "", fmt.Errorf("billing: customer: %w", err)
	}
	params := &stripe.SubscriptionListParams{Customer: stripe.String(customer), Status: stripe.String("all")}
	params.Context = ctx
	var subs []*stripe.Subscription
	it := s.stripe.Subscriptions.List(params)
	for it.Next() {
		subs = append(subs, it.Subscription())
	}
	if err := it.Err(); err != nil {
		return "", stripeError("billing: list subscriptions", err)
	}
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		now := s.now()
		for _, sub := range subs {
			// Asked for by customer, so each belongs to this customer and workspace.
			sub.Customer = &stripe.Customer{ID: customer}
			if _, _, err := s.applySubscription(ctx, q, sub, now, &workspaceID); err != nil {
				return err
			}
		}
		return s.recompute(ctx, q, workspaceID)
	})
	if err != nil {
		return "", fmt.Errorf("billing: sync: %w", err)
	}
	st, err := s.Status(ctx, workspaceID)
	if err != nil {
		return "", err
	}
	return st.Plan, nil
}

// stripeError turns a failed Stripe call into an unavailable error whose message
// tells the person that nothing changed; the cause is logged, never shown.
func stripeError(op string, err error) error {
	cause := fmt.Errorf("%s: %w", op, err)
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode >= 400 && se.HTTPStatusCode < 500 && se.HTTPStatusCode != http.StatusTooManyRequests {
		return &apperr.Error{Code: apperr.Unavailable, RetryAfter: 60, Err: cause,
			Message: "Stripe refused the request, so nothing was changed. The server's billing configuration may be wrong; please tell the operator."}
	}
	return apperr.Unavailablef(cause, 30, "Stripe could not be reached, so nothing was changed. Please try again in a minute.")
}
