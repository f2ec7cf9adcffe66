package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// verifyEmail opens an emailed verification link: the address is verified (or the
// account moves to the new address it names) and the person goes to the dashboard,
// which asks them to log in first if they are not.
func (h *Handler) verifyEmail(c echo.Context) error {
	v, err := h.Auth.VerifyEmail(c.Request().Context(), c.Param("token"))
	if err != nil {
		return err
	}
	if v.Changed {
		h.flash(c, "Your account's email address is now "+v.User.Email+".")
	} else {
		h.flash(c, "Thank you: "+v.User.Email+" is verified.")
	}
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// resendVerification sends the signed-in person a new verification link and
// returns them to the page they were on.
func (h *Handler) resendVerification(c echo.Context) error {
	u := currentUser(c)
	if err := h.Auth.ResendVerification(c.Request().Context(), u.ID); err != nil {
		return err
	}
	h.flash(c, "We sent a new verification link to "+u.Email+". It works for 24 hours.")
	return c.Redirect(http.StatusSeeOther, backTo(c))
}
