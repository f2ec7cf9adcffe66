// Package api serves the metered retrieval API under /v1: JSON in, JSON out, one
// error shape, authenticated by workspace API keys.
package api

import (
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/device"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Deps are the services the API calls.
type Deps struct {
	Keys        *apikey.Service
	Devices     *device.Service
	Retrieval   *retrieval.Service
	Meter       *metering.Service
	Plans       plan.Table
	CORSOrigins []string
	// BaseURL is the public URL; device sign-in sends people to its /activate.
	BaseURL string
	Log     *slog.Logger
}

// API holds the /v1 handlers.
type API struct {
	Deps
	// routes holds "METHOD /path" of every route Routes mounted, so requireScope
	// tells a route without a scope rule (refused) from no route at all (404).
	routes map[string]bool
}

// New returns the API.
func New(d Deps) *API { return &API{Deps: d} }

// cors allows the extension's origins and any listed in CORS_ORIGINS.
func (a *API) cors() echo.MiddlewareFunc {
	extra := map[string]bool{}
	for _, o := range a.CORSOrigins {
		extra[o] = true
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) {
			return strings.HasPrefix(origin, "chrome-extension://") ||
				strings.HasPrefix(origin, "moz-extension://") ||
				strings.HasPrefix(origin, "safari-web-extension://") ||
				extra[origin], nil
		},
		AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions},
		AllowHeaders:  []string{"Authorization", "X-API-Key", "Content-Type", "OpenAI-API-Key", "X-Request-ID"},
		ExposeHeaders: []string{"X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After"},
		MaxAge:        86400,
	})
}

// requireJSON refuses request bodies that are not declared as JSON.
func requireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
			if err != nil || mt != echo.MIMEApplicationJSON {
				return apperr.New(apperr.UnsupportedMedia, "Content-Type must be application/json.")
			}
		}
		return next(c)
	}
}

// keyFromRequest reads the API key from Authorization: Bearer or X-API-Key. A
// Bearer header wins; an Authorization header of another scheme (a proxy's Basic
// credentials, say) leaves the key to X-API-Key when that is sent.
func keyFromRequest(r *http.Request) (string, error) {
	xKey := strings.TrimSpace(r.Header.Get("X-API-Key"))
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		isBearer := strings.EqualFold(scheme, "Bearer")
		switch {
		case ok && isBearer && strings.TrimSpace(token) != "":
			return strings.TrimSpace(token), nil
		case isBearer || xKey == "":
			return "", apperr.New(apperr.Unauthorized, "The Authorization header must be \"Bearer <key>\".")
		}
	}
	if xKey != "" {
		return xKey, nil
	}
	return "", apperr.New(apperr.Unauthorized, "Missing API key: send \"Authorization: Bearer <key>\" or \"X-API-Key: <key>\".")
}

// authenticate resolves the request's key to a principal.
func (a *API) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key, err := keyFromRequest(c.Request())
		if err != nil {
			return err
		}
		r := c.Request()
		p, err := a.Keys.VerifyFrom(r.Context(), key, apikey.Client{IP: c.RealIP(), UserAgent: r.UserAgent()})
		if err != nil {
			return err
		}
		reqctx.SetPrincipal(c, p)
		return next(c)
	}
}

// principal returns the authenticated principal; routes behind authenticate always have one.
func principal(c echo.Context) apikey.Principal {
	p, _ := reqctx.Principal(c)
	return p
}

// changes guards the routes that change a workspace's documents: a key acts with
// its creator's role, and a viewer (a member demoted after making the key) reads
// and searches but changes nothing.
func (a *API) changes(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p := principal(c); p.Role == workspace.RoleViewer {
			return apperr.New(apperr.Forbidden, "This key was made by a viewer of %s; viewers read and search documents but cannot change them. Ask an admin for the member role.", p.WorkspaceName)
		}
		return next(c)
	}
}
