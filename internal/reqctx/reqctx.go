// Package reqctx carries per-request values (request id, API principal, dashboard
// user and workspace) through echo's context with typed accessors, so no handler
// reads a string key and asserts a type.
package reqctx

import (
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/workspace"
)

const (
	keyRequestID = "cairn.request_id"
	keyPrincipal = "cairn.principal"
	keyUser      = "cairn.user"
	keyWorkspace = "cairn.workspace"
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

// SetUser stores the dashboard's signed-in user.
func SetUser(c echo.Context, u auth.User) { c.Set(keyUser, u) }

// User returns the signed-in user; ok is false for visitors.
func User(c echo.Context) (auth.User, bool) {
	u, ok := c.Get(keyUser).(auth.User)
	return u, ok
}

// SetWorkspace stores the session's current workspace, with the user's role in it.
func SetWorkspace(c echo.Context, ws workspace.Workspace) { c.Set(keyWorkspace, ws) }

// Workspace returns the session's current workspace; ok is false outside the
// workspace pages.
func Workspace(c echo.Context) (workspace.Workspace, bool) {
	ws, ok := c.Get(keyWorkspace).(workspace.Workspace)
	return ws, ok
}
