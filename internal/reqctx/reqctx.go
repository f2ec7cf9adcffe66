// Package reqctx carries per-request values (request id, API principal) through
// echo's context with typed accessors.
package reqctx

import (
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
)

const (
	keyRequestID = "cairn.request_id"
	keyPrincipal = "cairn.principal"
)

// SetRequestID stores the request's id.
func SetRequestID(c echo.Context, id string) { c.Set(keyRequestID, id) }

// RequestID returns the request's id, or "".
func RequestID(c echo.Context) string {
	id, _ := c.Get(keyRequestID).(string)
	return id
}

// SetPrincipal stores the authenticated API key's principal.
func SetPrincipal(c echo.Context, p apikey.Principal) { c.Set(keyPrincipal, p) }

// Principal returns the authenticated principal; ok is false on unauthenticated routes.
func Principal(c echo.Context) (apikey.Principal, bool) {
	p, ok := c.Get(keyPrincipal).(apikey.Principal)
	return p, ok
}
