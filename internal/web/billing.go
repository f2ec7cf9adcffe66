package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// showBilling renders the plans, the current one and the ways to change it.
func (h *Handler) showBilling(c echo.Context) error {
	ctx := c.Request().Context()
	st, err := h.billingStatus(c)
	if err != nil {
		return err
	}
	ws := currentWorkspace(c)
	plans := h.Config.Plans
	b := views.Billing{
		Enabled: h.Billing.Enabled(), CanManage: ws.Allows(workspace.RoleOwner), PlanName: plans.Get(st.Plan).Name,
		Plans: PlanCards(plans, st.Plan), HasPortal: st.HasCustomer,
	}
	if sub, ok := st.Live(); ok {
		b.Subscribed = true
		b.Subscription = h.describeSubscription(st, sub)
	} else if len(st.Subscriptions) > 0 {
		b.Subscription = h.describeSubscription(st, st.Subscriptions[0])
	}
	keys, err := h.Keys.List(ctx, ws.ID)
	if err != nil {
		return err
	}
	name := plans.Get(st.Plan).Name
	if limit, active := plans.Get(st.Plan).Limits.APIKeys, countActive(keys, time.Now()); limit != plan.Unlimited && active > limit {
		b.OverLimits = append(b.OverLimits, fmt.Sprintf(
			"This workspace has %d active API keys and the %s plan allows %d. They all keep working, but no new key can be created until fewer than %d are active.",
			active, name, limit, limit))
	}
	usage, err := h.summary(c)
	if err != nil {
		return err
	}
	if limit := usage.DocumentsLimit; limit != plan.Unlimited && usage.DocumentsUsed > limit {
		b.OverLimits = append(b.OverLimits, fmt.Sprintf(
			"This workspace stores %s documents and the %s plan allows %s. They all stay searchable, but no new document can be stored until there are fewer than %s.",
			plan.Format(usage.DocumentsUsed), name, plan.Format(limit), plan.Format(limit)))
	}
	if b.Enabled && b.CanManage && st.HasCustomer {
		b.Account = h.billingAccount(c)
	}
	return render(c, http.StatusOK, views.BillingPage(h.shell(c, "Billing", "billing"), b))
}

// billingAccount reads how the workspace pays and its invoices. Stripe being down
// costs the page this section's content, never the page.
func (h *Handler) billingAccount(c echo.Context) *views.BillingAccount {
	d, err := h.Billing.Details(c.Request().Context(), currentWorkspace(c).ID)
	if err != nil {
		h.Log.Warn("billing page: details unavailable", "request_id", reqctx.RequestID(c), "err", err)
		return &views.BillingAccount{Problem: "The payment method and invoices could not be loaded from Stripe just now. Reload the page in a minute, or open Manage billing."}
	}
	a := &views.BillingAccount{PaymentMethod: d.PaymentMethod}
	if d.Stale {
		a.Problem = "Stripe could not be reached; this is how things stood on " + formatTime(&d.FetchedAt) + "."
	}
	for _, inv := range d.Invoices {
		a.Invoices = append(a.Invoices, views.BillingInvoice{
			Number: inv.Number, Date: inv.Created.Format("2 Jan 2006"), Amount: formatMoney(inv.Total, inv.Currency),
			Status: invoiceStatus(inv.Status), URL: inv.URL,
		})
	}
	return a
}

// formatMoney writes an amount in a currency's smallest unit for people.
func formatMoney(amount int64, currency string) string {
	cur := strings.ToUpper(currency)
	if zeroDecimal[cur] {
		return fmt.Sprintf("%d %s", amount, cur)
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	n := fmt.Sprintf("%d.%02d", amount/100, amount%100)
	if sym, ok := currencySymbols[cur]; ok {
		return sign + sym + n
	}
	return sign + n + " " + cur
}

var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£"}

// zeroDecimal are the currencies Stripe counts in whole units.
var zeroDecimal = map[string]bool{
	"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true,
}

// invoiceStatus names Stripe's invoice statuses for people.
func invoiceStatus(s string) string {
	switch s {
	case "paid":
		return "Paid"
	case "open":
		return "Due"
	case "uncollectible":
		return "Unpaid"
	case "void":
		return "Void"
	}
	return s
}

// billingCheckout sends an owner or admin to Stripe Checkout for the chosen plan.
func (h *Handler) billingCheckout(c echo.Context) error {
	url, err := h.Billing.Checkout(c.Request().Context(), currentWorkspace(c), currentUser(c).Email, plan.ID(c.FormValue("plan")))
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, url)
}

// billingPortal sends an owner or admin to the Stripe Customer Portal.
func (h *Handler) billingPortal(c echo.Context) error {
	url, err := h.Billing.Portal(c.Request().Context(), currentWorkspace(c))
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, url)
}

// billingSuccess is where Checkout returns after payment; it polls until Stripe's
// webhook has arrived.
func (h *Handler) billingSuccess(c echo.Context) error {
	st, err := h.billingStatus(c)
	if err != nil {
		return err
	}
	_, paid := st.Live()
	r := views.BillingReturn{Paid: paid, PlanName: h.Config.Plans.Get(st.Plan).Name}
	return render(c, http.StatusOK, views.BillingReturnPage(h.shell(c, "Billing", "billing"), r))
}

// billingCancel is where Checkout returns when the person backs out.
func (h *Handler) billingCancel(c echo.Context) error {
	st, err := h.billingStatus(c)
	if err != nil {
		return err
	}
	r := views.BillingReturn{Canceled: true, PlanName: h.Config.Plans.Get(st.Plan).Name}
	return render(c, http.StatusOK, views.BillingReturnPage(h.shell(c, "Billing", "billing"), r))
}

// ctxBilling memoises the request's billing.Status.
const ctxBilling = "cairn.billing"

// billingStatus reads the workspace's billing once per request. Reading it applies
// an expired grace period, so the workspace in the context gets the plan in force.
func (h *Handler) billingStatus(c echo.Context) (billing.Status, error) {
	if st, ok := c.Get(ctxBilling).(billing.Status); ok {
		return st, nil
	}
	ws := currentWorkspace(c)
	st, err := h.Billing.Status(c.Request().Context(), ws.ID)
	if err != nil {
		return billing.Status{}, err
	}
	if ws.Plan != st.Plan {
		ws.Plan = st.Plan
		reqctx.SetWorkspace(c, ws)
	}
	c.Set(ctxBilling, st)
	return st, nil
}

// billingBanners warn every dashboard page about a payment problem.
func (h *Handler) billingBanners(c echo.Context) []views.Message {
	st, err := h.billingStatus(c)
	if err != nil {
		h.Log.Warn("billing banner: status unavailable", "err", err)
		return nil
	}
	sub, ok := st.Live()
	if !ok {
		return nil
	}
	name := h.Config.Plans.Get(sub.Plan).Name
	switch {
	case sub.InGrace(st.At):
		return []views.Message{{Kind: "warn", Text: fmt.Sprintf(
			"Stripe could not collect the last payment for %s. %s stays active until %s; update the payment method under Billing → Manage billing to keep it.",
			name, name, formatTime(sub.GraceUntil))}}
	case sub.Status == billing.StatusPastDue || sub.Status == billing.StatusUnpaid:
		return []views.Message{{Kind: "error", Text: fmt.Sprintf(
			"The payment for %s is overdue, so this workspace is on %s. Documents and keys are kept; pay the open invoice under Billing → Manage billing to get %s back.",
			name, h.Config.Plans.Get(st.Plan).Name, name)}}
	}
	return nil
}

// describeSubscription says in words where a subscription stands.
func (h *Handler) describeSubscription(st billing.Status, sub billing.Subscription) *views.BillingSubscription {
	name := h.Config.Plans.Get(sub.Plan).Name
	free := h.Config.Plans.Get(plan.Free).Name
	d := &views.BillingSubscription{PlanName: name, Status: sub.Status, Ending: sub.CancelAtPeriodEnd}
	switch sub.Status {
	case billing.StatusActive, billing.StatusTrialing:
		switch {
		case sub.CancelAtPeriodEnd && sub.CurrentPeriodEnd != nil:
			d.Detail = fmt.Sprintf("Canceled: %s ends on %s and the workspace returns to %s then.", name, formatTime(sub.CurrentPeriodEnd), free)
		case sub.Status == billing.StatusTrialing && sub.CurrentPeriodEnd != nil:
			d.Detail = fmt.Sprintf("Trial until %s.", formatTime(sub.CurrentPeriodEnd))
		case sub.CurrentPeriodEnd != nil:
			d.Detail = fmt.Sprintf("Renews on %s.", formatTime(sub.CurrentPeriodEnd))
		}
	case billing.StatusPastDue:
		if sub.InGrace(st.At) {
			d.Detail = fmt.Sprintf("The last payment failed. %s stays active until %s while Stripe retries; update the payment method under Manage billing.", name, formatTime(sub.GraceUntil))
		} else {
			d.Detail = fmt.Sprintf("The last payment failed and the grace period is over; the workspace is on %s until the invoice is paid.", free)
		}
	case billing.StatusUnpaid:
		d.Detail = fmt.Sprintf("Unpaid: the workspace is on %s until the open invoice is paid.", free)
	case billing.StatusPaused:
		d.Detail = fmt.Sprintf("Paused: the workspace is on %s until the subscription is resumed.", free)
	case billing.StatusIncomplete:
		d.Detail = "Waiting for the first payment."
	case billing.StatusIncompleteExpired:
		d.Detail = "The first payment never went through; nothing was charged."
	case billing.StatusCanceled:
		d.Detail = fmt.Sprintf("Canceled; the workspace is on %s.", free)
	}
	return d
}
