package web

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// switchWorkspace makes another of the person's workspaces the session's current
// one; every page and action then works on it alone.
func (h *Handler) switchWorkspace(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such workspace.")
	}
	ws, err := h.Workspaces.ForUser(ctx, currentUser(c).ID, id)
	if err != nil {
		return err
	}
	if ws.Suspended {
		return apperr.New(apperr.Forbidden, "Your membership in %s is suspended: %s. Nothing was deleted.",
			ws.Name, workspace.SuspendedReason(h.Config.Plans, ws.Plan))
	}
	h.Sessions.Put(ctx, sessWorkspaceID, ws.ID.String())
	h.flash(c, fmt.Sprintf("You are now in %s, as %s %s.", ws.Name, workspace.Article(ws.Role), ws.Role))
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}
