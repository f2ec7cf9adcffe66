package web

import (
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// ctxSummary memoises the request's metering.Summary.
const ctxSummary = "cairn.usage_summary"

// summary returns the current workspace's usage this period, loaded once per request.
func (h *Handler) summary(c echo.Context) (metering.Summary, error) {
	if s, ok := c.Get(ctxSummary).(metering.Summary); ok {
		return s, nil
	}
	ws := currentWorkspace(c)
	s, err := h.Meter.Summary(c.Request().Context(), ws.ID, ws.Plan)
	if err != nil {
		return metering.Summary{}, err
	}
	c.Set(ctxSummary, s)
	return s, nil
}

// quotaBanners warns at 80 % and 100 % of a finite monthly quota. Unlimited plans
// cost no query. A failed lookup only loses the banner, never the page.
func (h *Handler) quotaBanners(c echo.Context) []views.Message {
	ws := currentWorkspace(c)
	if h.Config.Plans.Get(ws.Plan).Limits.RequestsPerMonth == plan.Unlimited {
		return nil
	}
	s, err := h.summary(c)
	if err != nil {
		h.Log.Warn("quota banner: usage lookup failed", "workspace_id", ws.ID, "err", err)
		return nil
	}
	resets := s.PeriodEnd.Format("2 January")
	next, hasNext := h.Config.Plans.Next(ws.Plan, func(l plan.Limits) int64 { return l.RequestsPerMonth })
	upgrade, href, action := "", "", ""
	if hasNext {
		href, action = "/dashboard/billing", "See plans"
		more := "unlimited requests"
		if n := next.Limits.RequestsPerMonth; n != plan.Unlimited {
			more = plan.Format(n) + " a month"
		}
		upgrade = fmt.Sprintf(" The %s plan includes %s.", next.Name, more)
	}
	switch s.Threshold() {
	case 100:
		return []views.Message{{Kind: "error", Text: fmt.Sprintf(
			"This workspace has used all %s billable API requests of this month. Storing, searching and answering are refused until the quota resets on %s.%s",
			plan.Format(s.RequestsLimit), resets, upgrade), Href: href, Action: action}}
	case 80:
		return []views.Message{{Kind: "warn", Text: fmt.Sprintf(
			"This workspace has used %s of its %s billable API requests this month (%d%%). The quota resets on %s.%s",
			plan.Format(s.RequestsUsed), plan.Format(s.RequestsLimit), s.Percent(), resets, upgrade), Href: href, Action: action}}
	}
	return nil
}
