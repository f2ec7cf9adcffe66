package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Session keys.
const (
	sessUserID      = "user_id"
	sessWorkspaceID = "workspace_id"
	sessCSRF        = "csrf"
	sessFlash       = "flash"
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

// startSession renews the session token (against fixation) and stores who logged in.
func (h *Handler) startSession(c echo.Context, userID, workspaceID string) error {
	ctx := c.Request().Context()
	if err := h.Sessions.RenewToken(ctx); err != nil {
		return err
	}
	// A new CSRF token too: the old one was handed to whoever held the anonymous
	// session, and the next form makes a fresh one.
	h.Sessions.Remove(ctx, sessCSRF)
	h.Sessions.Put(ctx, sessUserID, userID)
	h.Sessions.Put(ctx, sessWorkspaceID, workspaceID)
	return nil
}

// flash stores a message for the next page this session sees.
func (h *Handler) flash(c echo.Context, msg string) {
	h.Sessions.Put(c.Request().Context(), sessFlash, msg)
}
