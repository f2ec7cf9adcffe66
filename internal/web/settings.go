package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/views"
)

// showSettings renders the settings page.
func (h *Handler) showSettings(c echo.Context) error {
	p, err := h.settingsView(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.SettingsPage(h.shell(c, "Settings", "settings"), p))
}

// settingsView is the settings page's content for the signed-in person.
func (h *Handler) settingsView(c echo.Context) (views.Settings, error) {
	u, ws := currentUser(c), currentWorkspace(c)
	sessions, err := h.Auth.Sessions(c.Request().Context(), u.ID)
	if err != nil {
		return views.Settings{}, err
	}
	current := h.sessionID(c)
	p := views.Settings{Email: u.Email, EmailVerified: u.EmailVerified, WorkspaceName: ws.Name, NewName: ws.Name, Errors: map[string]string{}}
	for _, s := range sessions {
		p.Sessions = append(p.Sessions, views.SessionRow{
			ID: s.ID.String(), Device: deviceName(s.UserAgent), IP: s.IP,
			Started: formatTime(&s.CreatedAt), LastSeen: lastSeen(s.LastSeen, time.Now()), Current: s.ID == current,
		})
	}
	return p, nil
}

// settingsRefused renders the settings page again with err next to its field of
// form (password, email, workspace); errors that are not the person's go to the
// error handler.
func (h *Handler) settingsRefused(c echo.Context, form string, err error, keep func(*views.Settings)) error {
	e := apperr.As(err)
	if e == nil || e.Field == "" {
		return err
	}
	p, verr := h.settingsView(c)
	if verr != nil {
		return verr
	}
	p.Errors[form+"."+e.Field] = fieldMessage(e, fieldLabels[e.Field])
	if keep != nil {
		keep(&p)
	}
	return render(c, e.Code.Status(), views.SettingsPage(h.shell(c, "Settings", "settings"), p))
}

// fieldLabels are the labels of the settings forms' fields, which their errors
// name instead of the fields' machine names.
var fieldLabels = map[string]string{
	"current_password": "Current password", "new_password": "New password",
	"email": "New email address", "name": "Workspace name", "password": "New password",
}

// fieldMessage is a field's error as shown next to it: named by its label.
func fieldMessage(e *apperr.Error, label string) string {
	if label == "" {
		return e.Message
	}
	return label + ": " + strings.TrimPrefix(e.Message, e.Field+": ")
}

// changePassword sets a new password (the current one needed) and ends every
// other session of the account.
func (h *Handler) changePassword(c echo.Context) error {
	u := currentUser(c)
	err := h.Auth.ChangePassword(c.Request().Context(), u.ID, h.sessionID(c), metering.ClientKey(c.RealIP()), c.FormValue("current_password"), c.FormValue("new_password"))
	if err != nil {
		return h.settingsRefused(c, "password", err, nil)
	}
	h.flash(c, "Your password was changed, and every other session of your account has ended.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
}

// changeEmail sends a confirmation link to the new address; the address changes
// only when it is opened.
func (h *Handler) changeEmail(c echo.Context) error {
	u := currentUser(c)
	email := strings.TrimSpace(c.FormValue("email"))
	if err := h.Auth.RequestEmailChange(c.Request().Context(), u.ID, metering.ClientKey(c.RealIP()), email, c.FormValue("current_password")); err != nil {
		return h.settingsRefused(c, "email", err, func(p *views.Settings) { p.NewEmail = email })
	}
	p, err := h.settingsView(c)
	if err != nil {
		return err
	}
	p.EmailSentTo = email
	return render(c, http.StatusOK, views.SettingsPage(h.shell(c, "Settings", "settings"), p))
}

// renameWorkspace renames the session's workspace.
func (h *Handler) renameWorkspace(c echo.Context) error {
	name := c.FormValue("name")
	ws, err := h.Workspaces.Rename(c.Request().Context(), currentWorkspace(c).ID, name, currentUser(c).ID)
	if err != nil {
		return h.settingsRefused(c, "workspace", err, func(p *views.Settings) { p.NewName = name })
	}
	h.flash(c, "The workspace is now called "+ws.Name+".")
	return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
}

// endSession logs one of the person's other sessions out, on every replica.
func (h *Handler) endSession(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "That session has already ended.")
	}
	if id == h.sessionID(c) {
		return apperr.New(apperr.Invalid, "That is this browser's session: use Log out instead.")
	}
	if err := h.Auth.SessionEnd(c.Request().Context(), currentUser(c).ID, id); err != nil {
		return err
	}
	h.flash(c, "That session has ended.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
}

// endOtherSessions logs out every session of the person but this one.
func (h *Handler) endOtherSessions(c echo.Context) error {
	if err := h.Auth.SessionEndOthers(c.Request().Context(), currentUser(c).ID, h.sessionID(c)); err != nil {
		return err
	}
	h.flash(c, "Every other session of your account has ended.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
}

// lastSeen says when a session was last used, in words for the recent past.
func lastSeen(t, now time.Time) string {
	switch d := now.Sub(t); {
	case d < 2*time.Minute:
		return "Just now"
	case d < time.Hour:
		return pluralize(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return pluralize(int(d/time.Hour), "hour") + " ago"
	}
	return formatTime(&t)
}
