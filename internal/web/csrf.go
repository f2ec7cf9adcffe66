package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// ctxCSRF holds the request's *csrfState.
const ctxCSRF = "cairn.csrf"

// csrf refuses unsafe requests that don't echo the session's token in the _csrf
// field of the form body or the X-CSRF-Token header (htmx); never the query string. The token is made the first time a
// page renders a form (csrfToken), so visitors who only read public pages leave no
// session row behind.
func (h *Handler) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		st := &csrfState{sessions: h.Sessions, ctx: ctx, token: h.Sessions.GetString(ctx, sessCSRF)}
		c.Set(ctxCSRF, st)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		// The form body or the header only: a token in the URL would leak into
		// logs, history and Referer headers.
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.Request().PostFormValue("_csrf")
		}
		if st.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(st.token)) != 1 {
			return apperr.New(apperr.Forbidden, "This form has expired or did not come from Cairn. Reload the page and try again.")
		}
		return next(c)
	}
}

// csrfState is the request's view of the session's CSRF token.
type csrfState struct {
	sessions *scs.SessionManager
	ctx      context.Context
	token    string
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the session's CSRF token for a form, creating it on first use.
func csrfToken(c echo.Context) string {
	st, _ := c.Get(ctxCSRF).(*csrfState)
	if st == nil {
		return ""
	}
	if st.token == "" {
		st.token = randomToken()
		st.sessions.Put(st.ctx, sessCSRF, st.token)
	}
	return st.token
}
