package web

import (
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// dashboardNav is the sidebar, in order; each item shows only to the roles that
// routeAccess lets open its page.
var dashboardNav = []views.NavItem{
	{Key: "overview", Label: "Overview", Href: "/dashboard"},
	{Key: "documents", Label: "Documents", Href: "/dashboard/documents"},
	{Key: "keys", Label: "API keys", Href: "/dashboard/keys"},
	{Key: "usage", Label: "Usage", Href: "/dashboard/usage"},
	{Key: "billing", Label: "Billing", Href: "/dashboard/billing"},
	{Key: "team", Label: "Team", Href: "/dashboard/team"},
	{Key: "audit", Label: "Audit log", Href: "/dashboard/audit"},
	{Key: "settings", Label: "Settings", Href: "/dashboard/settings"},
}

// shell builds the dashboard frame for the current user and workspace, taking any
// flash message out of the session.
func (h *Handler) shell(c echo.Context, title, active string) views.Shell {
	ws, u := currentWorkspace(c), currentUser(c)
	s := views.Shell{
		Title: title, Active: active, CSRF: csrfToken(c), UserEmail: u.Email,
		Workspace: views.Workspace{
			ID: ws.ID.String(), Name: ws.Name, Plan: string(ws.Plan),
			PlanName: h.Config.Plans.Get(ws.Plan).Name, Role: ws.Role,
		},
	}
	if !u.EmailVerified {
		s.Unverified = u.Email
	}
	s.Allowed = make(map[string]bool, len(routeAccess))
	for route, rule := range routeAccess {
		s.Allowed[route] = rule == anyone || rule == signedIn || ws.Allows(rule)
	}
	for _, n := range dashboardNav {
		if s.Allowed["GET "+n.Href] {
			s.Nav = append(s.Nav, n)
		}
	}
	// The switcher lists every workspace the person belongs to; a failure to list
	// them only hides it.
	if all, err := h.Workspaces.ListForUser(c.Request().Context(), u.ID); err != nil {
		h.Log.Warn("workspace switcher: list failed", "err", err)
	} else if len(all) > 1 {
		for _, w := range all {
			s.Workspaces = append(s.Workspaces, views.WorkspaceChoice{
				ID: w.ID.String(), Name: w.Name, Role: w.Role, PlanName: h.Config.Plans.Get(w.Plan).Name,
				Current: w.ID == ws.ID, Suspended: w.Suspended,
			})
		}
	}
	s.Banners = append(s.Banners, h.billingBanners(c)...)
	s.Banners = append(s.Banners, h.quotaBanners(c)...)
	s.Flash = h.popFlash(c)
	return s
}

// render writes a templ component with a status.
func render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// formatTime renders a timestamp for tables; nil is "Never".
func formatTime(t *time.Time) string {
	if t == nil {
		return "Never"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}
