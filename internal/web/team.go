package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// showTeam lists the workspace's members and pending invitations.
func (h *Handler) showTeam(c echo.Context) error {
	return h.renderTeam(c, http.StatusOK, views.Team{})
}

// invite invites an email into the workspace with a role and mails the link.
func (h *Handler) invite(c echo.Context) error {
	ws, u := currentWorkspace(c), currentUser(c)
	email, role := c.FormValue("email"), c.FormValue("role")
	inv, err := h.Team.Invite(c.Request().Context(), ws, u.ID, email, role)
	if err != nil {
		return h.teamError(c, err, views.Team{Email: email, Role: role})
	}
	h.flash(c, fmt.Sprintf("Invitation sent to %s as %s. The link works for 7 days.", inv.Email, inv.Role))
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// resendInvitation mails a pending invitation again; the old link dies.
func (h *Handler) resendInvitation(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such invitation.")
	}
	if err := h.Team.Resend(c.Request().Context(), currentWorkspace(c), id); err != nil {
		return h.teamError(c, err, views.Team{})
	}
	h.flash(c, "Invitation sent again with a new link; the old link no longer works.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// revokeInvitation withdraws a pending invitation.
func (h *Handler) revokeInvitation(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such invitation.")
	}
	if err := h.Team.RevokeInvitation(c.Request().Context(), currentWorkspace(c), id); err != nil {
		return h.teamError(c, err, views.Team{})
	}
	h.flash(c, "Invitation revoked; its link no longer works.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// changeRole gives a member another role.
func (h *Handler) changeRole(c echo.Context) error {
	id, err := uuid.Parse(c.Param("user_id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such member.")
	}
	role := c.FormValue("role")
	if err := h.Team.ChangeRole(c.Request().Context(), currentWorkspace(c), id, role); err != nil {
		return h.teamError(c, err, views.Team{})
	}
	h.flash(c, "Role changed to "+role+".")
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// removeMember takes a member out of the workspace and revokes their keys.
func (h *Handler) removeMember(c echo.Context) error {
	id, err := uuid.Parse(c.Param("user_id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such member.")
	}
	keys, err := h.Team.Remove(c.Request().Context(), currentWorkspace(c), currentUser(c).ID, id)
	if err != nil {
		return h.teamError(c, err, views.Team{})
	}
	msg := "Member removed. They are refused from their next request."
	if len(keys) > 0 {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		msg = fmt.Sprintf("Member removed and their %d %s revoked (%s); both stop working at once.",
			len(keys), views.Plural(len(keys), "key", "keys"), strings.Join(names, ", "))
	}
	h.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// leaveWorkspace takes the person out of the current workspace.
func (h *Handler) leaveWorkspace(c echo.Context) error {
	ctx := c.Request().Context()
	ws, u := currentWorkspace(c), currentUser(c)
	if err := h.Team.Leave(ctx, ws, u.ID); err != nil {
		return h.teamError(c, err, views.Team{})
	}
	next, err := h.firstWorkspace(ctx, u.ID)
	if err != nil {
		return err
	}
	h.flash(c, fmt.Sprintf("You left %s. You are now in %s.", ws.Name, next.Name))
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// transferOwnership makes another member the owner.
func (h *Handler) transferOwnership(c echo.Context) error {
	id, err := uuid.Parse(c.FormValue("user_id"))
	if err != nil {
		return h.teamError(c, apperr.Field("user_id", "choose the member who becomes the owner"), views.Team{})
	}
	if err := h.Team.Transfer(c.Request().Context(), currentWorkspace(c), currentUser(c).ID, id); err != nil {
		return h.teamError(c, err, views.Team{})
	}
	h.flash(c, "Ownership transferred. You are now an admin.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/team")
}

// teamError shows the caller's mistakes on the Team page with their status; other
// errors go to the error handler.
func (h *Handler) teamError(c echo.Context, err error, t views.Team) error {
	e := apperr.As(err)
	if e == nil || e.Code == apperr.Unavailable || e.Code == apperr.Internal {
		return err
	}
	t.Error = e.Message
	if c.Path() == "/dashboard/team/invitations" {
		t.ErrorField = e.Field
	}
	return h.renderTeam(c, e.Code.Status(), t)
}

func (h *Handler) renderTeam(c echo.Context, status int, t views.Team) error {
	ctx := c.Request().Context()
	ws, u := currentWorkspace(c), currentUser(c)
	members, err := h.Team.Members(ctx, ws.ID)
	if err != nil {
		return err
	}
	seats, err := h.Team.Seats(ctx, ws)
	if err != nil {
		return err
	}
	p := h.Config.Plans.Get(ws.Plan)
	t.CanManage, t.IsOwner, t.TeamPlan, t.Roles = ws.CanManage(), ws.Role == workspace.RoleOwner, p.Team, team.Assignable
	t.UpgradePlan = h.teamPlanName()
	t.Seats = seatsText(seats)
	t.SeatsFull = seats.Full()
	// The confirmation before removing someone lists the keys it revokes.
	keyNames := map[uuid.UUID][]string{}
	if t.CanManage {
		keys, err := h.Keys.List(ctx, ws.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.RevokedAt == nil && k.CreatedBy != uuid.Nil {
				keyNames[k.CreatedBy] = append(keyNames[k.CreatedBy], fmt.Sprintf("%s (%s…)", k.Name, k.Prefix))
			}
		}
	}
	suspended := 0
	for _, m := range members {
		row := views.TeamMember{
			UserID: m.UserID.String(), Email: m.Email, Role: m.Role, Joined: formatTime(&m.Joined),
			Suspended: m.Suspended, ActiveKeys: m.ActiveKeys, IsYou: m.UserID == u.ID,
		}
		if m.Suspended {
			suspended++
		}
		row.CanChange = t.CanManage && !row.IsYou && m.Role != workspace.RoleOwner
		if row.CanChange {
			row.RemoveConfirm = removeConfirm(m.Email, ws.Name, keyNames[m.UserID])
		}
		t.Members = append(t.Members, row)
		if t.IsOwner && !row.IsYou && !m.Suspended {
			t.Transfer = append(t.Transfer, row)
		}
	}
	if suspended > 0 {
		t.Suspended = fmt.Sprintf("%d %s suspended because %s. Suspended members cannot open %s and their keys answer 403 plan_limit. Nothing was deleted: they, their keys and their roles come back on upgrade.",
			suspended, views.Plural(suspended, "member is", "members are"), workspace.SuspendedReason(h.Config.Plans, ws.Plan), ws.Name)
	}
	if t.CanManage {
		invs, err := h.Team.Invitations(ctx, ws.ID)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, i := range invs {
			t.Invitations = append(t.Invitations, views.TeamInvitation{
				ID: i.ID.String(), Email: i.Email, Role: i.Role, InvitedBy: i.InvitedBy,
				Expires: formatTime(&i.Expires), Expired: i.Expired(now),
			})
		}
	}
	return render(c, status, views.TeamPage(h.shell(c, "Team", "team"), t))
}

// removeConfirm is the question asked before removing a member, naming every key
// the removal revokes.
func removeConfirm(email, wsName string, keys []string) string {
	if len(keys) == 0 {
		return fmt.Sprintf("Remove %s from %s? They made no active keys here.", email, wsName)
	}
	return fmt.Sprintf("Remove %s from %s? These %d %s they made will be revoked and stop working at once:\n%s",
		email, wsName, len(keys), views.Plural(len(keys), "key", "keys"), "• "+strings.Join(keys, "\n• "))
}

func seatsText(s team.Seats) string {
	used := s.Members + s.Pending
	detail := fmt.Sprintf("%d %s", s.Members, views.Plural(s.Members, "member", "members"))
	if s.Pending > 0 {
		detail += fmt.Sprintf(", %d pending %s", s.Pending, views.Plural(s.Pending, "invitation", "invitations"))
	}
	if s.Limit == plan.Unlimited {
		return fmt.Sprintf("%s.", detail)
	}
	return fmt.Sprintf("%d of %d %s used (%s).", used, s.Limit, views.Plural(s.Limit, "seat", "seats"), detail)
}
