package api

import (
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
)

// routeScopes is the one table of the scope each /v1 route that takes a key
// needs, keyed by method and echo path; 0 means any valid key will do (GET /v1/me
// tells a key what it is). requireScope enforces it; a keyed route missing here
// is refused, and TestEveryRouteUnderEveryScope walks the router so that cannot ship.
var routeScopes = map[string]apikey.Scopes{
	"GET /v1/me":               0,
	"POST /v1/documents":       apikey.DocumentsWrite,
	"GET /v1/documents":        apikey.DocumentsRead,
	"GET /v1/documents/:id":    apikey.DocumentsRead,
	"DELETE /v1/documents/:id": apikey.DocumentsWrite,
	"POST /v1/search":          apikey.Search,
	"POST /v1/answer":          apikey.Answer,
	"GET /v1/usage":            apikey.UsageRead,
	"GET /v1/export":           apikey.DocumentsRead,
}

// RouteScope returns the scope a keyed route needs and whether the table has the
// route at all.
func RouteScope(method, path string) (apikey.Scopes, bool) {
	s, ok := routeScopes[method+" "+path]
	return s, ok
}

// requireScope refuses a key without the scope its route needs: 403
// insufficient_scope naming the scope.
func (a *API) requireScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := c.Request().Method + " " + c.Path()
		need, ok := routeScopes[route]
		if !ok {
			if !a.routes[route] {
				return next(c) // no such route: the group's not-found handler answers 404
			}
			a.Log.Error("api: route without a scope rule; refused", "route", route)
			return apperr.New(apperr.InsufficientScope, "No scope grants %s.", route)
		}
		p := principal(c)
		if !p.Scopes.Has(need) {
			has := p.Scopes.String()
			if has == "" {
				has = "none"
			}
			return apperr.New(apperr.InsufficientScope,
				"This API key lacks the scope \"%s\" that %s needs (it has: %s). Create a key with that scope, or sign in again from the extension.",
				need, route, has)
		}
		return next(c)
	}
}
