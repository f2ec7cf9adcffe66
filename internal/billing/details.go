package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// DetailsTTL is how long details read from Stripe are shown before Stripe is asked
// again; a webhook event about the customer ends it at once.
const DetailsTTL = 10 * time.Minute

// detailsTimeout bounds the Stripe calls behind one billing page view, so a slow
// Stripe delays the page by seconds, not by stripe-go's retries.
const detailsTimeout = 5 * time.Second

// invoicesShown is how many of the latest invoices the billing page lists.
const invoicesShown = 5

// Details is what the billing page shows of a workspace's Stripe account beyond its
// plan: how it pays and its latest invoices.
type Details struct {
	// PaymentMethod describes the card or account that pays, e.g. "Visa ending in
	// 4242, expires 08/2030"; empty when Stripe holds none.
	PaymentMethod string `json:"payment_method"`
	// Invoices are the latest finalized invoices, newest first.
	Invoices  []Invoice `json:"invoices"`
	FetchedAt time.Time `json:"-"`
	// Stale is set when Stripe could not be reached and these are the last details
	// read; FetchedAt says from when.
	Stale bool `json:"-"`
}

// Invoice is one Stripe invoice as the billing page lists it.
type Invoice struct {
	Number   string    `json:"number"`
	Created  time.Time `json:"created"`
	Total    int64     `json:"total"`    // in the currency's smallest unit
	Currency string    `json:"currency"` // ISO code, lower case as Stripe gives it
	Status   string    `json:"status"`   // open, paid, uncollectible, void
	URL      string    `json:"url"`      // Stripe's hosted page for the invoice
}

// Details returns the workspace's payment method and latest invoices: the cached
// ones while younger than DetailsTTL, otherwise read from Stripe and cached. When
// Stripe fails, the last cached details come back marked Stale; with none cached
// the error is unavailable. Without billing, or before the workspace has a Stripe
// customer, the details are empty.
func (s *Service) Details(ctx context.Context, workspaceID uuid.UUID) (Details, error) {
	if !s.Enabled() {
		return Details{}, nil
	}
	customer, err := s.q.StripeCustomerGet(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Details{}, nil
	}
	if err != nil {
		return Details{}, fmt.Errorf("billing: details: %w", err)
	}
	cached, haveCache, err := s.cachedDetails(ctx, workspaceID)
	if err != nil {
		return Details{}, err
	}
	if haveCache && s.now().Sub(cached.FetchedAt) < DetailsTTL {
		return cached, nil
	}
	st, err := s.status(ctx, workspaceID)
	if err != nil {
		return Details{}, err
	}
	subID := ""
	if sub, ok := st.Live(); ok {
		subID = sub.ID
	}
	sctx, cancel := context.WithTimeout(ctx, detailsTimeout)
	defer cancel()
	fresh, err := s.fetchDetails(sctx, customer, subID)
	if err != nil {
		if haveCache {
			s.log.Warn("billing: details from Stripe failed; showing the cached ones", "workspace", workspaceID, "err", err)
			cached.Stale = true
			return cached, nil
		}
		return Details{}, stripeError("billing: details", err)
	}
	fresh.FetchedAt = s.now()
	body, err := json.Marshal(fresh)
	if err != nil {
		return Details{}, fmt.Errorf("billing: details: %w", err)
	}
	if err := s.q.BillingDetailsSave(ctx, dbq.BillingDetailsSaveParams{WorkspaceID: workspaceID, Details: body, FetchedAt: fresh.FetchedAt}); err != nil {
		return Details{}, fmt.Errorf("billing: cache details: %w", err)
	}
	return fresh, nil
}

func (s *Service) cachedDetails(ctx context.Context, workspaceID uuid.UUID) (Details, bool, error) {
	row, err := s.q.BillingDetailsGet(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Details{}, false, nil
	}
	if err != nil {
		return Details{}, false, fmt.Errorf("billing: cached details: %w", err)
	}
	var d Details
	if err := json.Unmarshal(row.Details, &d); err != nil {
		// A row this version cannot read is read from Stripe again.
		return Details{}, false, nil
	}
	d.FetchedAt = row.FetchedAt
	return d, true, nil
}

// fetchDetails reads the payment method (the subscription's own, else the
// customer's default) and the latest invoices from Stripe.
func (s *Service) fetchDetails(ctx context.Context, customer, subscriptionID string) (Details, error) {
	var d Details
	if subscriptionID != "" {
		p := &stripe.SubscriptionParams{}
		p.Context = ctx
		p.AddExpand("default_payment_method")
		sub, err := s.stripe.Subscriptions.Get(subscriptionID, p)
		if err != nil {
			return Details{}, fmt.Errorf("subscription: %w", err)
		}
		d.PaymentMethod = describePaymentMethod(sub.DefaultPaymentMethod)
	}
	if d.PaymentMethod == "" {
		p := &stripe.CustomerParams{}
		p.Context = ctx
		p.AddExpand("invoice_settings.default_payment_method")
		c, err := s.stripe.Customers.Get(customer, p)
		if err != nil {
			return Details{}, fmt.Errorf("customer: %w", err)
		}
		if c.InvoiceSettings != nil {
			d.PaymentMethod = describePaymentMethod(c.InvoiceSettings.DefaultPaymentMethod)
		}
	}
	lp := &stripe.InvoiceListParams{Customer: stripe.String(customer)}
	lp.Context = ctx
	lp.Limit = stripe.Int64(invoicesShown + 5) // drafts are skipped
	lp.Single = true                           // one page: only the latest matter
	it := s.stripe.Invoices.List(lp)
	for it.Next() && len(d.Invoices) < invoicesShown {
		inv := it.Invoice()
		if inv.Status == stripe.InvoiceStatusDraft || inv.Status == "" {
			continue // a draft can still change; Stripe's own portal hides it too
		}
		number := inv.Number
		if number == "" {
			number = inv.ID
		}
		d.Invoices = append(d.Invoices, Invoice{
			Number: number, Created: time.Unix(inv.Created, 0).UTC(), Total: inv.Total,
			Currency: string(inv.Currency), Status: string(inv.Status), URL: inv.HostedInvoiceURL,
		})
	}
	if err := it.Err(); err != nil {
		return Details{}, fmt.Errorf("invoices: %w", err)
	}
	return d, nil
}

// describePaymentMethod says how a workspace pays in words, without anything that
// identifies the card beyond what Stripe's own receipts show.
func describePaymentMethod(pm *stripe.PaymentMethod) string {
	if pm == nil {
		return ""
	}
	if pm.Card != nil {
		brand := cardBrands[string(pm.Card.Brand)]
		if brand == "" {
			brand = "Card"
		}
		return fmt.Sprintf("%s ending in %s, expires %02d/%d", brand, pm.Card.Last4, pm.Card.ExpMonth, pm.Card.ExpYear)
	}
	if pm.SEPADebit != nil {
		return "SEPA Direct Debit ending in " + pm.SEPADebit.Last4
	}
	if pm.USBankAccount != nil {
		return pm.USBankAccount.BankName + " account ending in " + pm.USBankAccount.Last4
	}
	if pm.Type != "" {
		return strings.ReplaceAll(string(pm.Type), "_", " ")
	}
	return ""
}

var cardBrands = map[string]string{
	"amex": "American Express", "diners": "Diners Club", "discover": "Discover", "eftpos_au": "eftpos",
	"jcb": "JCB", "mastercard": "Mastercard", "unionpay": "UnionPay", "visa": "Visa",
}

// forgetDetails drops the cached details of the customer an event is about, in the
// event's transaction, so the next billing page reads Stripe again: a payment, a
// new card or a cancellation shows at once.
func forgetDetails(ctx context.Context, q *dbq.Queries, ev stripe.Event) error {
	var obj struct {
		ID       string          `json:"id"`
		Object   string          `json:"object"`
		Customer json.RawMessage `json:"customer"`
	}
	if ev.Data == nil || json.Unmarshal(ev.Data.Raw, &obj) != nil {
		return nil
	}
	customer := ""
	switch {
	case obj.Object == "customer":
		customer = obj.ID
	case len(obj.Customer) > 0 && obj.Customer[0] == '"':
		_ = json.Unmarshal(obj.Customer, &customer)
	case len(obj.Customer) > 0 && obj.Customer[0] == '{':
		var c struct{ ID string }
		_ = json.Unmarshal(obj.Customer, &c)
		customer = c.ID
	}
	if customer == "" {
		return nil
	}
	if err := q.BillingDetailsForgetCustomer(ctx, customer); err != nil {
		return fmt.Errorf("billing: forget cached details: %w", err)
	}
	return nil
}
