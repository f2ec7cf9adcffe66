package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/views"
)

// showLogin renders the log-in form.
func (h *Handler) showLogin(c echo.Context) error {
	if h.Sessions.GetString(c.Request().Context(), sessUserID) != "" {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	f := views.AuthForm{CSRF: csrfToken(c), Next: nextParam(c)}
	if c.QueryParam("reset") != "" {
		f.Notice = "Your password was changed and every session of your account ended. Log in with the new password."
	}
	return render(c, http.StatusOK, views.Login(f))
}

// login checks the credentials (throttled per address, per address and email, and
// per email for browsers that never logged in to the account) and starts a session.
func (h *Handler) login(c echo.Context) error {
	email := c.FormValue("email")
	// The audit log records who tried from where; the person is known only once
	// the password checks out.
	r := c.Request()
	ctx := audit.WithActor(r.Context(), audit.Actor{Kind: audit.ActorUser, IP: c.RealIP(), UserAgent: r.UserAgent()})
	device := ""
	if ck, err := r.Cookie(deviceCookie); err == nil {
		device = ck.Value
	}
	in, err := h.Auth.Login(ctx, auth.Attempt{Email: email, Password: c.FormValue("password"), IP: metering.ClientKey(c.RealIP()), Device: device})
	if err != nil {
		return h.authFormError(c, err, email, views.Login)
	}
	all, err := h.Workspaces.ListForUser(c.Request().Context(), in.User.ID)
	if err != nil {
		return err
	}
	wsID := ""
	if len(all) > 0 {
		wsID = all[0].ID.String()
	}
	if err := h.startSession(c, in.User.ID, wsID); err != nil {
		return err
	}
	if in.Device != "" {
		h.setDeviceCookie(c, in.Device)
	}
	return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
}

// deviceCookie holds the browser's known-device token: it lets the owner's own
// browser in while strangers' failed guesses lock the email for others. Only the
// log-in form needs it, so it is sent nowhere else.
const deviceCookie = "cairn_device"

func (h *Handler) setDeviceCookie(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{
		Name: deviceCookie, Value: token, Path: "/login", MaxAge: int(auth.KnownDeviceTTL.Seconds()),
		HttpOnly: true, Secure: h.Config.SecureCookies(), SameSite: http.SameSiteLaxMode,
	})
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
	if uid, err := uuid.Parse(h.Sessions.GetString(ctx, sessUserID)); err == nil {
		if err := h.Auth.SessionLogOut(ctx, uid, h.sessionID(c)); err != nil {
			return err
		}
	}
	if err := h.Sessions.RenewToken(ctx); err != nil {
		return err
	}
	if err := h.Sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
