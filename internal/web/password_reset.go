package web

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/views"
)

// showForgotPassword renders the form that asks for the address to send a reset
// link to.
func (h *Handler) showForgotPassword(c echo.Context) error {
	return render(c, http.StatusOK, views.ForgotPassword(views.AuthForm{CSRF: csrfToken(c)}, false))
}

// forgotPassword queues a reset link for the address and answers with the same page
// and status whether or not it has an account.
func (h *Handler) forgotPassword(c echo.Context) error {
	email := c.FormValue("email")
	if err := h.Auth.RequestReset(c.Request().Context(), email); err != nil {
		return h.authFormError(c, err, email, func(f views.AuthForm) templ.Component { return views.ForgotPassword(f, false) })
	}
	return render(c, http.StatusOK, views.ForgotPassword(views.AuthForm{CSRF: csrfToken(c), Email: email}, true))
}

// showResetPassword renders the page an emailed reset link opens, or says why the
// link no longer works.
func (h *Handler) showResetPassword(c echo.Context) error {
	noReferrer(c)
	token := c.Param("token")
	if err := h.Auth.CheckResetLink(c.Request().Context(), token); err != nil {
		return h.deadResetLink(c, err)
	}
	return render(c, http.StatusOK, views.ResetPassword(views.ResetForm{CSRF: csrfToken(c), Token: token}))
}

// resetPassword sets the new password from a reset link, which ends every session
// of the account, and sends the person to log in with it.
func (h *Handler) resetPassword(c echo.Context) error {
	noReferrer(c)
	token := c.Param("token")
	_, err := h.Auth.ResetPassword(c.Request().Context(), token, c.FormValue("password"))
	if e := apperr.As(err); e != nil && e.Field == "password" {
		return render(c, e.Code.Status(), views.ResetPassword(views.ResetForm{CSRF: csrfToken(c), Token: token, Error: fieldMessage(e, fieldLabels[e.Field])}))
	}
	if err != nil {
		return h.deadResetLink(c, err)
	}
	// This browser's own session ended with the others; it starts afresh.
	if err := h.Sessions.Destroy(c.Request().Context()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login?reset=1")
}

// deadResetLink renders the reset page saying why its link does not work.
func (h *Handler) deadResetLink(c echo.Context, err error) error {
	e := apperr.As(err)
	if e == nil {
		return err
	}
	return render(c, e.Code.Status(), views.ResetPassword(views.ResetForm{CSRF: csrfToken(c), Error: e.Message, Dead: true}))
}

// noReferrer keeps a page whose URL holds a token from naming it to any other page.
func noReferrer(c echo.Context) {
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
}
