package web

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// showInvitation is where an invitation's emailed link lands: it says what the
// invitation is, or why the link no longer works, and offers to accept it (signed
// in) or to log in or sign up first.
func (h *Handler) showInvitation(c echo.Context) error {
	token := c.Param("token")
	v := views.InvitationView{Token: token}
	if u, ok := h.sessionUser(c); ok {
		v.SignedInAs, v.CSRF = u.Email, csrfToken(c)
	}
	inv, err := h.Team.Lookup(c.Request().Context(), token)
	e := apperr.As(err)
	if err != nil && (e == nil || e.Code == apperr.Unavailable) {
		return err
	}
	v.Workspace, v.Role, v.Email, v.InvitedBy, v.Expires = inv.WorkspaceName, inv.Role, inv.Email, inv.InvitedBy, formatTime(&inv.Expires)
	status := http.StatusOK
	if e != nil {
		v.Error, status = e.Message, e.Code.Status()
	}
	return render(c, status, views.InvitationPage(v))
}

// acceptInvitation makes the signed-in person a member of the invitation's
// workspace and opens it.
func (h *Handler) acceptInvitation(c echo.Context) error {
	ctx := c.Request().Context()
	u, token := currentUser(c), c.Param("token")
	ws, err := h.Team.Accept(ctx, token, u.ID, u.Email)
	if e := apperr.As(err); e != nil && e.Code != apperr.Unavailable {
		v := views.InvitationView{Token: token, CSRF: csrfToken(c), SignedInAs: u.Email, Error: e.Message}
		// The acceptance's own error says what went wrong; the lookup only names things.
		if inv, _ := h.Team.Lookup(ctx, token); inv.WorkspaceName != "" {
			v.Workspace, v.Role, v.Email, v.InvitedBy = inv.WorkspaceName, inv.Role, inv.Email, inv.InvitedBy
		}
		return render(c, e.Code.Status(), views.InvitationPage(v))
	}
	if err != nil {
		return err
	}
	h.Sessions.Put(ctx, sessWorkspaceID, ws.ID.String())
	h.flash(c, fmt.Sprintf("Welcome to %s. You joined as %s %s.", ws.Name, workspace.Article(ws.Role), ws.Role))
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// sessionUser returns the signed-in user on a public route, where authorize loads
// nobody.
func (h *Handler) sessionUser(c echo.Context) (auth.User, bool) {
	ctx := c.Request().Context()
	uid, err := uuid.Parse(h.Sessions.GetString(ctx, sessUserID))
	if err != nil {
		return auth.User{}, false
	}
	u, err := h.Auth.Get(ctx, uid)
	return u, err == nil
}
