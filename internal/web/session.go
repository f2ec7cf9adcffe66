package web

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/labstack/echo/v4"
)

// Session keys.
const (
	sessUserID      = "user_id"
	sessWorkspaceID = "workspace_id"
	sessCSRF        = "csrf"
	// sessID names the session's row in the auth service's index of sessions;
	// a session without one, or whose row is gone, has ended.
	sessID = "session_id"
)

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

// startSession renews the session token (against fixation), stores who logged in
// and enters the session in the user's index of sessions, which is what lets the
// person (or a password reset) end it on every replica.
func (h *Handler) startSession(c echo.Context, userID uuid.UUID, workspaceID string) error {
	ctx := c.Request().Context()
	if err := h.Sessions.RenewToken(ctx); err != nil {
		return err
	}
	r := c.Request()
	id, err := h.Auth.SessionStart(ctx, userID, h.Sessions.Token(ctx), r.UserAgent(), c.RealIP())
	if err != nil {
		return err
	}
	// A new CSRF token too: the old one was handed to whoever held the anonymous
	// session, and the next form makes a fresh one.
	h.Sessions.Remove(ctx, sessCSRF)
	h.Sessions.Put(ctx, sessUserID, userID.String())
	h.Sessions.Put(ctx, sessWorkspaceID, workspaceID)
	h.Sessions.Put(ctx, sessID, id.String())
	return nil
}

// sessionID returns the id of the signed-in session in the user's index.
func (h *Handler) sessionID(c echo.Context) uuid.UUID {
	id, _ := uuid.Parse(h.Sessions.GetString(c.Request().Context(), sessID))
	return id
}
