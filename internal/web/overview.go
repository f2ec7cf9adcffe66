package web

import (
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
	p := h.Config.Plans.Get(ws.Plan)
	o := views.Overview{
		BaseURL:       h.Config.BaseURL,
		PlanName:      p.Name,
		ActiveKeys:    countActive(keys),
		KeyLimit:      plan.Format(int64(p.Limits.APIKeys)),
		RequestsLimit: plan.Format(p.Limits.RequestsPerMonth),
		RequestsPct:   -1,
		DocumentLimit: plan.Format(int64(p.Limits.Documents)),
	}
	return render(c, http.StatusOK, views.OverviewPage(h.shell(c, "Overview", "overview"), o))
}

// placeholder renders a page whose feature is not built yet, saying so.
func (h *Handler) placeholder(title, active, text string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return render(c, http.StatusOK, views.Placeholder(h.shell(c, title, active), title, text))
	}
}
