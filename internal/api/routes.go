package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Routes mounts every /v1 route on e.
func (a *API) Routes(e *echo.Echo) {
	v1 := e.Group("/v1", a.cors(), metered(a.recordUsage))
	// Rate limit before anything else a key can make the server do; the quota only
	// for billable routes (metering.Billable), after the request proved well-formed.
	// The body limit comes after the rate limit so that an oversized body's 413
	// carries the RateLimit fields and counts against the key like any request.
	// A scope refusal comes after the rate limit, so it counts against the key too.
	authed := v1.Group("", metered(a.limitUnauthenticated), a.authenticate, metered(a.rateLimit), a.requireScope, bodyLimit, requireJSON, metered(a.quota))
	authed.GET("/me", a.me)
	authed.POST("/documents", a.upsertDocuments, a.changes)
	authed.GET("/documents", a.listDocuments)
	authed.GET("/documents/:id", a.getDocument)
	authed.DELETE("/documents/:id", a.deleteDocument, a.changes)
	authed.POST("/search", a.search)
	authed.POST("/answer", a.answer)
	authed.GET("/usage", a.usage)
	authed.GET("/export", a.exportDocuments)
	v1.GET("/openapi.json", a.openapi, a.limitOptionalKey)
	// Device sign-in takes no key; its handlers charge the address's budget.
	dev := v1.Group("/device", middleware.BodyLimit("10M"), requireJSON)
	dev.POST("/code", a.deviceCode)
	dev.POST("/token", a.deviceToken)

	a.routes = map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound {
			a.routes[r.Method+" "+r.Path] = true
		}
	}
}

// bodyLimit refuses bodies over 10 MiB with 413 on the routes that read one; a GET
// or DELETE reads no body, so whatever it declares is no reason to refuse it.
var bodyLimit = middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
	Limit: "10M",
	Skipper: func(c echo.Context) bool {
		m := c.Request().Method
		return m != http.MethodPost && m != http.MethodPut && m != http.MethodPatch
	},
})

// metered is mw, except in a build with -tags nometering (see meteringBuilt),
// where it passes every request through.
func metered(mw echo.MiddlewareFunc) echo.MiddlewareFunc {
	if meteringBuilt {
		return mw
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
}
