package web

import (
	"time"

	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// showOverview renders the dashboard home: plan, keys and usage at a glance.
func (h *Handler) showOverview(c echo.Context) error {
	ws := currentWorkspace(c)
	keys, err := h.Keys.List(c.Request().Context(), ws.ID)
	if err != nil {
		return err
	}
	sum, err := h.summary(c)
	if err != nil {
		return err
	}
	p := sum.Plan
	o := views.Overview{
		BaseURL:       h.Config.BaseURL,
		PlanName:      p.Name,
		ActiveKeys:    countActive(keys, time.Now()),
		KeyLimit:      plan.Format(int64(p.Limits.APIKeys)),
		RequestsUsed:  sum.RequestsUsed,
		RequestsLimit: plan.Format(sum.RequestsLimit),
		RequestsPct:   sum.Percent(),
		Documents:     sum.DocumentsUsed,
		DocumentLimit: plan.Format(sum.DocumentsLimit),
	}
	return render(c, http.StatusOK, views.OverviewPage(h.shell(c, "Overview", "overview"), o))
}
