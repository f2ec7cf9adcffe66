package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/views"
)

// RenderError answers a dashboard request that failed with e, for the server's one
// error handler, and reports whether it wrote the answer; when it did not (a
// visitor, or a failure before the person could be known) the caller writes the
// public error page.
//
// A signed-in person keeps their frame: the error is a page inside the dashboard,
// with the sidebar, so they never look logged out. A form they sent that failed
// for a reason of the moment (Stripe or a model unreachable, a rate limit or the
// quota, a conflict) takes them back to the page they sent it from, with the
// message on top of it; a refusal (a role, a bad or forged form) stays a page with
// its status. An htmx request gets the message alone, which app.js shows.
func (h *Handler) RenderError(c echo.Context, status int, e *apperr.Error) bool {
	u, ok := reqctx.User(c)
	if !ok {
		return false
	}
	if _, ok := reqctx.Workspace(c); !ok {
		// Refused for the workspace itself (a suspended membership): the frame is
		// the one the session has moved to.
		ws, err := h.currentWorkspace(c.Request().Context(), u.ID, false)
		if err != nil {
			return false
		}
		reqctx.SetWorkspace(c, ws)
	}
	r := c.Request()
	if r.Header.Get("HX-Request") == "true" {
		_ = render(c, status, views.ErrorFragment(e.Message))
		return true
	}
	m := *h.failure(c, e)
	if r.Method == http.MethodPost && comeBack[e.Code] {
		h.flashMessage(c, m)
		_ = c.Redirect(http.StatusSeeOther, h.origin(c))
		return true
	}
	s := h.shell(c, views.ErrorTitle(status), "")
	_ = render(c, status, views.AppErrorPage(s, status, views.ErrorTitle(status), m))
	return true
}

// comeBack are the failures that send a form back to its page: the action may work
// a little later or after a change elsewhere, and the page is where to try again.
var comeBack = map[apperr.Code]bool{
	apperr.Unavailable: true, apperr.RateLimited: true, apperr.QuotaExceeded: true, apperr.Conflict: true,
}

// failure is the message for e on a page; a limit says where it is lifted.
func (h *Handler) failure(c echo.Context, e *apperr.Error) *views.Message {
	m := &views.Message{Kind: "error", Text: e.Message}
	if e.Code == apperr.RateLimited || e.Code == apperr.QuotaExceeded {
		m.Href, m.Action = h.upgradeLink(c)
	}
	return m
}

// upgradeLink points at the billing page when a better plan exists for the
// workspace, so a limit always says where it is lifted.
func (h *Handler) upgradeLink(c echo.Context) (href, action string) {
	ws := currentWorkspace(c)
	if _, ok := h.Config.Plans.Next(ws.Plan, func(l plan.Limits) int64 { return l.RequestsPerMonth }); !ok {
		return "", ""
	}
	return "/dashboard/billing", "See plans"
}

// origin is the dashboard page a form was sent from: the Referer when it is one of
// this server's dashboard pages, else the nearest page above the form's route
// (/dashboard/keys for /dashboard/keys/:id/revoke), else the overview.
func (h *Handler) origin(c echo.Context) string {
	r := c.Request()
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && strings.HasPrefix(ref.Path, "/dashboard") &&
		h.routes["GET "+ref.Path] {
		return ref.RequestURI()
	}
	route, path := strings.Split(c.Path(), "/"), strings.Split(r.URL.Path, "/")
	for n := len(route) - 1; n > 1 && n <= len(path); n-- {
		if p := strings.Join(route[:n], "/"); h.routes["GET "+p] && strings.HasPrefix(p, "/dashboard") {
			return strings.Join(path[:n], "/")
		}
	}
	return "/dashboard"
}
