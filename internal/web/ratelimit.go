package web

import (
	"fmt"
	"strconv"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/views"
)

// limitForm spends one of the client IP's submissions of the log-in or sign-up
// form; over the limit the form comes back with a 429 and Retry-After.
func (h *Handler) limitForm(scope metering.Scope, page func(views.AuthForm) templ.Component) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			d := h.Meter.AllowForm(c.Request().Context(), scope, c.RealIP())
			if d.Allowed {
				return next(c)
			}
			err := d.Refuse(fmt.Sprintf("Too many attempts from your network. Wait %s and try again.", waitText(d.Wait())))
			return h.authFormError(c, err, c.FormValue("email"), page)
		}
	}
}

func waitText(seconds int) string {
	if seconds < 90 {
		return pluralize(seconds, "second")
	}
	return pluralize((seconds+59)/60, "minute")
}

func pluralize(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
