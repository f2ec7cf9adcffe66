// Package web serves the dashboard: server-rendered templ pages with htmx, sessions
// in PostgreSQL and a CSRF token on every state-changing form. Each page or action
// has its own file; routes.go lists them all and access.go says who may use each.
package web

import (
	"log/slog"
	"sync"

	"github.com/alexedwards/scs/v2"

	"github.com/cairn-dev/cairn/internal/account"
	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/device"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/onboarding"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// Deps are the services the dashboard calls.
type Deps struct {
	Config config.Config
	// APIReference is the OpenAPI document that /docs renders.
	APIReference []byte
	Log          *slog.Logger
	Sessions     *scs.SessionManager
	Auth         *auth.Service
	Workspaces   *workspace.Service
	Keys         *apikey.Service
	Devices      *device.Service
	Billing      *billing.Service
	Meter        *metering.Service
	Retrieval    *retrieval.Service
	Team         *team.Service
	AuditLog     *audit.Log
	Account      *account.Service
	Onboarding   *onboarding.Service
}

// Handler holds the dashboard's handlers.
type Handler struct {
	Deps
	// routes holds "METHOD /path" of every route Routes mounted, so authorize tells
	// a route without an access rule (refused) from no route at all (404).
	routes map[string]bool
	// apiRef is /docs's page, built from Deps.APIReference on first use.
	apiRef func() (views.APIReference, error)
}

// New returns the dashboard handler.
func New(d Deps) *Handler {
	return &Handler{Deps: d, apiRef: sync.OnceValues(func() (views.APIReference, error) {
		return buildAPIReference(d.APIReference, d.Config.BaseURL)
	})}
}
