package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
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

// Checkout returns the URL of a Stripe Checkout session in which the workspace
// subscribes to plan p. A workspace has at most one open session: asking again for
// the same plan returns it, asking for another plan expires it at Stripe first, so
// two sessions can never both be paid. A workspace that already pays through a
// subscription gets a Customer Portal URL instead, where plans change. It creates
// the workspace's Stripe customer on first use. It returns forbidden for members
// who may not manage billing, invalid_request for a plan not for sale and
// unavailable when Stripe cannot be reached.
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
	if _, ok := st.Live(); ok {
		// A workspace that pays changes plans in the portal, never by a second subscription.
		return s.Portal(ctx, ws)
	}
	customer, err := s.ensureCustomer(ctx, ws, email)
	if err != nil {
		return "", err
	}
	var url string
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.CheckoutSessionEnsure(ctx, ws.ID); err != nil {
			return err
		}
		open, err := q.CheckoutSessionLock(ctx, ws.ID)
		if err != nil {
			return err
		}
		now := s.now()
		if open.SessionID != "" && now.Before(open.ExpiresAt) {
			if open.Plan == string(p) {
				url = open.Url // the same Checkout again: its page is still open
				return nil
			}
			if err := s.expireCheckout(ctx, open.SessionID); err != nil {
				return err
			}
		}
		sess, err := s.newCheckoutSession(ctx, ws, customer, price, now.Add(checkoutLifetime))
		if err != nil {
			return err
		}
		url = sess.URL
		return q.CheckoutSessionSave(ctx, dbq.CheckoutSessionSaveParams{
			WorkspaceID: ws.ID, SessionID: sess.ID, Plan: string(p), Url: sess.URL, ExpiresAt: now.Add(checkoutLifetime),
		})
	})
	if errors.Is(err, errCheckoutPaid) {
		return s.Portal(ctx, ws)
	}
	if err != nil {
		if apperr.As(err) != nil {
			return "", err
		}
		return "", fmt.Errorf("billing: checkout: %w", err)
	}
	return url, nil
}

// checkoutLifetime is how long a Checkout session stays open (Stripe allows 30
// minutes to 24 hours): while it is open, the workspace gets it again rather than a
// second one.
const checkoutLifetime = time.Hour

// errCheckoutPaid is an open session that turned out to be paid already.
var errCheckoutPaid = errors.New("billing: the open checkout session was completed")

// expireCheckout ends an open session at Stripe so it can no longer be paid. A
// session Stripe will not expire because it was completed meanwhile means the
// workspace now pays: errCheckoutPaid.
func (s *Service) expireCheckout(ctx context.Context, id string) error {
	params := &stripe.CheckoutSessionExpireParams{}
	params.Context = ctx
	_, err := s.stripe.CheckoutSessions.Expire(id, params)
	if err == nil {
		return nil
	}
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		return stripeError("billing: expire checkout session", err)
	}
	get := &stripe.CheckoutSessionParams{}
	get.Context = ctx
	sess, gerr := s.stripe.CheckoutSessions.Get(id, get)
	switch {
	case gerr != nil:
		return stripeError("billing: read checkout session", gerr)
	case sess.Status == stripe.CheckoutSessionStatusComplete:
		return errCheckoutPaid
	}
	return nil // expired already
}

// newCheckoutSession creates a Checkout session in which the workspace subscribes
// at price, open until expires.
func (s *Service) newCheckoutSession(ctx context.Context, ws workspace.Workspace, customer, price string, expires time.Time) (*stripe.CheckoutSession, error) {
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
		ExpiresAt:           stripe.Int64(expires.Unix()),
	}
	params.AddMetadata("workspace_id", ws.ID.String())
	params.Context = ctx
	// A fresh key per attempt: stripe-go's own retries of this POST reuse it.
	params.SetIdempotencyKey("cairn-checkout-" + uuid.NewString())
	sess, err := s.stripe.CheckoutSessions.New(params)
	if err != nil {
		return nil, stripeError("billing: checkout session", err)
	}
	return sess, nil
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
	if err := audit.Record(ctx, s.q, audit.Entry{
		WorkspaceID: ws.ID, Action: audit.BillingPortalOpened, TargetKind: "workspace", TargetID: ws.ID.String(),
	}); err != nil {
		return "", fmt.Errorf("billing: portal: %w", err)
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
