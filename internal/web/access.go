package web

import (
	"context"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Who may use a route, besides the workspace roles (workspace.RoleViewer …
// workspace.RoleOwner, each meaning "at least this role in the session's current
// workspace").
const (
	// anyone needs no session: public pages and the forms that start one.
	anyone = "anyone"
	// signedIn needs a signed-in person, whatever their role: their own account.
	signedIn = "signed-in"
)

// routeAccess is the one table of who may use each dashboard route, keyed by method
// and echo path. authorize enforces it before any handler runs, so a handler never
// checks a role itself; a route missing here is refused, and
// TestEveryDashboardRouteHasAnAccessRule walks the router so that cannot ship.
// Services still check the rules that depend on the object (a member revokes only
// their own keys).
var routeAccess = map[string]string{
	"GET /":        anyone,
	"GET /signup":  anyone,
	"POST /signup": anyone,
	"GET /login":   anyone,
	"POST /login":  anyone,
	"POST /logout": anyone,

	"GET /password/forgot":        anyone,
	"POST /password/forgot":       anyone,
	"GET /password/reset/:token":  anyone,
	"POST /password/reset/:token": anyone,

	"GET /verify-email/:token":  anyone,
	"POST /verify-email/resend": signedIn,
	"GET /docs":                 anyone,

	// Device sign-in: the chosen workspace's role is checked by the device service.
	"GET /activate":  signedIn,
	"POST /activate": signedIn,

	"GET /dashboard":                    workspace.RoleViewer,
	"GET /dashboard/extension":          workspace.RoleViewer,
	"GET /dashboard/extension/download": workspace.RoleViewer,
	// The checklist is shown to those who can follow it (members and up).
	"POST /dashboard/onboarding/dismiss": workspace.RoleMember,
	"GET /dashboard/keys":                workspace.RoleMember,
	"POST /dashboard/keys":               workspace.RoleMember,
	"POST /dashboard/keys/:id/revoke":    workspace.RoleMember,
	"POST /dashboard/keys/:id/roll":      workspace.RoleMember,
	"GET /dashboard/documents":           workspace.RoleViewer,
	"GET /dashboard/documents/search":    workspace.RoleViewer,
	"POST /dashboard/documents/delete":   workspace.RoleMember,
	"POST /dashboard/documents/ask":      workspace.RoleViewer,
	"GET /dashboard/usage":               workspace.RoleViewer,
	"GET /dashboard/usage.csv":           workspace.RoleViewer,
	"GET /dashboard/billing":             workspace.RoleMember,
	"POST /dashboard/billing/checkout":   workspace.RoleOwner,
	"POST /dashboard/billing/portal":     workspace.RoleOwner,
	"GET /dashboard/billing/success":     workspace.RoleMember,
	"GET /dashboard/billing/cancel":      workspace.RoleMember,
	"GET /dashboard/settings":            signedIn,
	// The person's own account: what it holds in every workspace, as its roles
	// let them see it (account.Service.Export), and leaving Cairn.
	"GET /dashboard/settings/export":  signedIn,
	"POST /dashboard/settings/delete": signedIn,
	// A person's own account, whatever their role in the workspace.
	"POST /dashboard/settings/password":            signedIn,
	"POST /dashboard/settings/email":               signedIn,
	"POST /dashboard/settings/sessions/:id/end":    signedIn,
	"POST /dashboard/settings/sessions/end-others": signedIn,
	"POST /dashboard/settings/workspace":           workspace.RoleAdmin,
	// The embedder decides what every member's searches compare, and a custom
	// endpoint holds a key: the workspace's admins choose it.
	"GET /dashboard/settings/embedder":  workspace.RoleAdmin,
	"POST /dashboard/settings/embedder": workspace.RoleAdmin,

	// The switch names its target; the service checks membership of that one.
	"POST /dashboard/workspaces/:id/switch": signedIn,

	"GET /dashboard/team":                          workspace.RoleViewer,
	"POST /dashboard/team/invitations":             workspace.RoleAdmin,
	"POST /dashboard/team/invitations/:id/resend":  workspace.RoleAdmin,
	"POST /dashboard/team/invitations/:id/revoke":  workspace.RoleAdmin,
	"POST /dashboard/team/members/:user_id/role":   workspace.RoleAdmin,
	"POST /dashboard/team/members/:user_id/remove": workspace.RoleAdmin,
	"POST /dashboard/team/leave":                   workspace.RoleViewer,
	"POST /dashboard/team/transfer":                workspace.RoleOwner,
	"GET /dashboard/audit":                         workspace.RoleAdmin,
	"GET /dashboard/audit.csv":                     workspace.RoleAdmin,

	// The link works signed out (it offers log-in and sign-up); accepting needs
	// the invited person signed in, and the service checks it is them.
	"GET /invitations/:token":         anyone,
	"POST /invitations/:token/accept": signedIn,
}

// authorize applies routeAccess: it loads the user (sending visitors to log in) and,
// for role rules, the session's current workspace with the user's role in it, and
// refuses a role below the rule with a page naming the role needed.
func (h *Handler) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Method + " " + c.Path()
		rule, ok := routeAccess[key]
		if !ok {
			if !h.routes[key] {
				// No such route: the group's not-found handler answers 404, inside
				// the dashboard's frame for a signed-in person.
				if h.Sessions.GetString(c.Request().Context(), sessUserID) != "" {
					if u, err := h.signedInUser(c); err != nil || u == nil {
						return err
					} else if ws, err := h.currentWorkspace(c.Request().Context(), u.ID, false); err == nil {
						reqctx.SetWorkspace(c, ws)
					}
				}
				return next(c)
			}
			h.Log.Error("web: route without an access rule; refused", "route", key)
			return apperr.New(apperr.Forbidden, "This page is not available.")
		}
		if rule == anyone {
			return next(c)
		}
		u, err := h.signedInUser(c)
		if err != nil || u == nil {
			return err
		}
		ws, err := h.currentWorkspace(c.Request().Context(), u.ID, rule != signedIn)
		if err != nil {
			return err
		}
		reqctx.SetWorkspace(c, ws)
		if rule != signedIn && !ws.Allows(rule) {
			return apperr.New(apperr.Forbidden, "This needs the %s role in %s (or a higher one); you are %s %s.",
				rule, ws.Name, workspace.Article(ws.Role), ws.Role)
		}
		return next(c)
	}
}

// signedInUser loads the session's user and records them as the actor of what the
// request changes. Without a session it redirects to the log-in page and returns a
// nil user.
func (h *Handler) signedInUser(c echo.Context) (*auth.User, error) {
	ctx := c.Request().Context()
	uid, err := uuid.Parse(h.Sessions.GetString(ctx, sessUserID))
	if err != nil {
		return nil, c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
	u, err := h.Auth.Get(ctx, uid)
	if apperr.Is(err, apperr.NotFound) {
		_ = h.Sessions.Destroy(ctx)
		return nil, c.Redirect(http.StatusSeeOther, "/login")
	}
	if err != nil {
		return nil, err
	}
	// Ended sessions (a password reset or change, or the settings page) are refused
	// here, on whichever replica they arrive.
	alive, err := h.Auth.SessionAlive(ctx, uid, h.sessionID(c), c.RealIP())
	if err != nil {
		return nil, err
	}
	if !alive {
		_ = h.Sessions.Destroy(ctx)
		return nil, c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
	}
	reqctx.SetUser(c, u)
	r := c.Request()
	c.SetRequest(r.WithContext(audit.WithActor(r.Context(), audit.User(u.ID, c.RealIP(), r.UserAgent()))))
	return &u, nil
}

// currentWorkspace returns the session's workspace, read afresh on every request so
// that a member removed or suspended a moment ago is refused on their very next
// one. When the user can no longer open it, the session moves to their first
// workspace they can open; with strict (a route of the workspace) this request is
// refused all the same, so a form meant for the old workspace never acts on
// another, while account routes simply go on in the new one.
func (h *Handler) currentWorkspace(ctx context.Context, uid uuid.UUID, strict bool) (workspace.Workspace, error) {
	id, err := uuid.Parse(h.Sessions.GetString(ctx, sessWorkspaceID))
	if err != nil {
		return h.firstWorkspace(ctx, uid)
	}
	ws, err := h.Workspaces.ForUser(ctx, uid, id)
	if err == nil && !ws.Suspended {
		return ws, nil
	}
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return workspace.Workspace{}, err
	}
	next, ferr := h.firstWorkspace(ctx, uid)
	if ferr != nil || !strict {
		return next, ferr
	}
	if err == nil { // a member, but suspended
		return workspace.Workspace{}, apperr.New(apperr.Forbidden, "Your membership in %s is suspended: %s. Nothing was deleted. You are now in %s.",
			ws.Name, workspace.SuspendedReason(h.Config.Plans, ws.Plan), next.Name)
	}
	gone := "the workspace this page belonged to"
	if old, err := h.Workspaces.Get(ctx, id); err == nil {
		gone = old.Name // they were a member: its name is no secret to them
	}
	return workspace.Workspace{}, apperr.New(apperr.Forbidden, "You are no longer a member of %s. You are now in %s.", gone, next.Name)
}

// firstWorkspace moves the session to the user's oldest workspace they can open.
func (h *Handler) firstWorkspace(ctx context.Context, uid uuid.UUID) (workspace.Workspace, error) {
	all, err := h.Workspaces.ListForUser(ctx, uid)
	if err != nil {
		return workspace.Workspace{}, err
	}
	for _, ws := range all {
		if !ws.Suspended {
			h.Sessions.Put(ctx, sessWorkspaceID, ws.ID.String())
			return ws, nil
		}
	}
	return workspace.Workspace{}, apperr.New(apperr.Forbidden, "Your account belongs to no workspace you can open.")
}

// currentUser returns the signed-in user of a route that needs one.
func currentUser(c echo.Context) auth.User {
	u, _ := reqctx.User(c)
	return u
}

// currentWorkspace returns the session's workspace of a route that needs one.
func currentWorkspace(c echo.Context) workspace.Workspace {
	ws, _ := reqctx.Workspace(c)
	return ws
}
