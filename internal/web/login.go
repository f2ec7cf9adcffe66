package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/views"
)

// showLogin renders the log-in form.
func (h *Handler) showLogin(c echo.Context) error {
	if h.Sessions.GetString(c.Request().Context(), sessUserID) != "" {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return render(c, http.StatusOK, views.Login(views.AuthForm{CSRF: csrfToken(c), Next: nextParam(c)}))
}

// login checks the credentials (throttled per email and IP) and starts a session.
func (h *Handler) login(c echo.Context) error {
	email := c.FormValue("email")
	// The audit log records who tried from where; the person is known only once
	// the password checks out.
	r := c.Request()
	ctx := audit.WithActor(r.Context(), audit.Actor{Kind: audit.ActorUser, IP: c.RealIP(), UserAgent: r.UserAgent()})
	u, err := h.Auth.Login(ctx, email, c.FormValue("password"), metering.ClientKey(c.RealIP()))
	if err != nil {
		return h.authFormError(c, err, email, views.Login)
	}
	all, err := h.Workspaces.ListForUser(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	wsID := ""
	if len(all) > 0 {
		wsID = all[0].ID.String()
	}
	if err := h.startSession(c, u.ID.String(), wsID); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
}

// nextParam returns the request's post-login destination if it is a safe one, else "".
func nextParam(c echo.Context) string {
	if n := c.QueryParam("next"); n != "" && safeNext(n) == n {
		return n
	}
	return ""
}

// safeNext allows only same-site dashboard and invitation paths, and the device
// sign-in page a device's link opens, as a post-login destination.
func safeNext(next string) string {
	page := strings.HasPrefix(next, "/dashboard") || strings.HasPrefix(next, team.PathInvitation) ||
		next == "/activate" || strings.HasPrefix(next, "/activate?")
	if page && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/dashboard"
}

// backTo is the dashboard page a form was posted from (its Referer, when that is
// one of ours), else the overview.
func backTo(c echo.Context) string {
	ref, err := url.Parse(c.Request().Referer())
	if err != nil || (ref.Host != "" && ref.Host != c.Request().Host) {
		return "/dashboard"
	}
	return safeNext(ref.RequestURI())
}

// logout ends the session everywhere it is stored.
func (h *Handler) logout(c echo.Context) error {
	ctx := c.Request().Context()
	if err := h.Sessions.RenewToken(ctx); err != nil {
		return err
	}
	if err := h.Sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
