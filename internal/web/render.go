package web

import (
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// shell builds the dashboard frame for the current user and workspace, taking any
// flash message out of the session.
func (h *Handler) shell(c echo.Context, title, active string) views.Shell {
	ws := currentWorkspace(c)
	s := views.Shell{
		Title: title, Active: active, CSRF: csrfToken(c), UserEmail: currentUser(c).Email,
		Workspace: views.Workspace{
			ID: ws.ID.String(), Name: ws.Name, Plan: string(ws.Plan),
			PlanName: h.Config.Plans.Get(ws.Plan).Name, Role: ws.Role,
		},
	}
	if u := currentUser(c); !u.EmailVerified {
		s.Unverified = u.Email
	}
	s.Banners = append(s.Banners, h.billingBanners(c)...)
	s.Banners = append(s.Banners, h.quotaBanners(c)...)
	if f := h.Sessions.PopString(c.Request().Context(), sessFlash); f != "" {
		s.Flash = &views.Message{Kind: "ok", Text: f}
	}
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
