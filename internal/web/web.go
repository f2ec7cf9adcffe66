// Package web serves the dashboard: server-rendered templ pages with htmx, sessions
// in PostgreSQL and a CSRF token on every state-changing form.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/a-h/templ"
	"github.com/alexedwards/scs/v2"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// Session keys.
const (
	sessUserID      = "user_id"
	sessWorkspaceID = "workspace_id"
	sessCSRF        = "csrf"
	sessFlash       = "flash"
)

// Deps are the services the dashboard calls.
type Deps struct {
	Config     config.Config
	Log        *slog.Logger
	Sessions   *scs.SessionManager
	Auth       *auth.Service
	Workspaces *workspace.Service
	Keys       *apikey.Service
	Billing    *billing.Service
	Meter      *metering.Service
	Retrieval  *retrieval.Service
}

// Handler holds the dashboard's handlers.
type Handler struct {
	Deps
}

// New returns the dashboard handler.
func New(d Deps) *Handler { return &Handler{Deps: d} }

// withSession loads the session around the rest of the chain. Errors are rendered
// inside it, so the session is saved before the error page is written.
func (h *Handler) withSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h.Sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.SetRequest(r)
			c.Response().Writer = w
			if err := next(c); err != nil {
				c.Error(err)
			}
		})).ServeHTTP(c.Response().Writer, c.Request())
		return nil
	}
}

// maxFormBody bounds a dashboard request body. The forms are a few short fields;
// without a bound the CSRF check's form parsing would read up to 10 MB into memory,
// and multipart file parts to disk without limit, for anyone who asks.
const maxFormBody = 64 << 10

// limitBody refuses dashboard bodies over maxFormBody before anything reads them.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxFormBody {
			return apperr.New(apperr.TooLarge, "The form is over the %d KiB limit.", maxFormBody>>10)
		}
		// A chunked body is cut off at the bound; the form then parses as empty and
		// fails the CSRF check.
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBody)
		return next(c)
	}
}

// csrf refuses unsafe requests that don't echo the session's token in the _csrf
// form field or the X-CSRF-Token header (htmx). The token is made the first time a
// page renders a form (csrfToken), so visitors who only read public pages leave no
// session row behind.
func (h *Handler) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		st := &csrfState{sessions: h.Sessions, ctx: ctx, token: h.Sessions.GetString(ctx, sessCSRF)}
		c.Set(sessCSRF, st)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
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
	st, _ := c.Get(sessCSRF).(*csrfState)
	if st == nil {
		return ""
	}
	if st.token == "" {
		st.token = randomToken()
		st.sessions.Put(st.ctx, sessCSRF, st.token)
	}
	return st.token
}

// requireUser sends visitors without a session to the log-in page and loads the
// user and current workspace for everyone else.
func (h *Handler) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		uid, err := uuid.Parse(h.Sessions.GetString(ctx, sessUserID))
		if err != nil {
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		u, err := h.Auth.Get(ctx, uid)
		if apperr.Is(err, apperr.NotFound) {
			_ = h.Sessions.Destroy(ctx)
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		if err != nil {
			return err
		}
		ws, err := h.currentWorkspace(ctx, uid)
		if err != nil {
			return err
		}
		c.Set("user", u)
		c.Set("workspace", ws)
		return next(c)
	}
}

// currentWorkspace returns the session's workspace if the user still belongs to it,
// else their first one.
func (h *Handler) currentWorkspace(ctx context.Context, uid uuid.UUID) (workspace.Workspace, error) {
	if id, err := uuid.Parse(h.Sessions.GetString(ctx, sessWorkspaceID)); err == nil {
		ws, err := h.Workspaces.ForUser(ctx, uid, id)
		if err == nil {
			return ws, nil
		}
		if !apperr.Is(err, apperr.NotFound) {
			return workspace.Workspace{}, err
		}
	}
	all, err := h.Workspaces.ListForUser(ctx, uid)
	if err != nil {
		return workspace.Workspace{}, err
	}
	if len(all) == 0 {
		return workspace.Workspace{}, apperr.New(apperr.Forbidden, "Your account belongs to no workspace.")
	}
	h.Sessions.Put(ctx, sessWorkspaceID, all[0].ID.String())
	return all[0], nil
}

func currentUser(c echo.Context) auth.User {
	u, _ := c.Get("user").(auth.User)
	return u
}

func currentWorkspace(c echo.Context) workspace.Workspace {
	ws, _ := c.Get("workspace").(workspace.Workspace)
	return ws
}

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
	s.Banners = append(s.Banners, h.billingBanners(c)...)
	s.Banners = append(s.Banners, h.quotaBanners(c)...)
	if f := h.Sessions.PopString(c.Request().Context(), sessFlash); f != "" {
		s.Flash = &views.Message{Kind: "ok", Text: f}
	}
	return s
}

// flash stores a message for the next page this session sees.
func (h *Handler) flash(c echo.Context, msg string) {
	h.Sessions.Put(c.Request().Context(), sessFlash, msg)
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
