package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/views"
)

// showSignup renders the sign-up form.
func (h *Handler) showSignup(c echo.Context) error {
	if h.Sessions.GetString(c.Request().Context(), sessUserID) != "" {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	f := views.AuthForm{CSRF: csrfToken(c), Next: nextParam(c)}
	// Signing up from an invitation's link: the account must use the invited address.
	if token, ok := strings.CutPrefix(f.Next, team.PathInvitation); ok {
		if inv, err := h.Team.Lookup(c.Request().Context(), token); err == nil {
			f.Email, f.Invitation = inv.Email, inv.WorkspaceName
		}
	}
	return render(c, http.StatusOK, views.Signup(f))
}

// signup creates the account and its workspace, then logs the person in.
func (h *Handler) signup(c echo.Context) error {
	email := c.FormValue("email")
	u, ws, err := h.Auth.SignUp(c.Request().Context(), email, c.FormValue("password"))
	if err != nil {
		return h.authFormError(c, err, email, views.Signup)
	}
	if err := h.startSession(c, u.ID, ws.ID.String()); err != nil {
		return err
	}
	device, err := h.Auth.RememberDevice(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	h.setDeviceCookie(c, device)
	return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
}

// authFormError re-renders a sign-up or log-in form with the error next to its field.
// Errors that are not the caller's go to the error handler.
func (h *Handler) authFormError(c echo.Context, err error, email string, page func(views.AuthForm) templ.Component) error {
	e := apperr.As(err)
	if e == nil {
		return err
	}
	f := views.AuthForm{CSRF: csrfToken(c), Email: email, Error: e.Message, Next: nextParam(c)}
	switch e.Field {
	case "email":
		f.EmailError, f.Error, f.Taken = e.Message, "", e.Code == apperr.Conflict
	case "password":
		f.PasswordError, f.Error = e.Message, ""
	}
	if e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	return render(c, e.Code.Status(), page(f))
}
