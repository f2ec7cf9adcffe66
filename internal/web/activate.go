package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/device"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/views"
)

// deviceAbilities says what a device key's scopes (device.Scopes) allow, in words.
var deviceAbilities = []string{"save pages", "search them", "answer questions from them", "read this month's usage"}

// showActivate shows the code form, or, with ?code=, the waiting sign-in to decide.
func (h *Handler) showActivate(c echo.Context) error {
	code := c.QueryParam("code")
	if code == "" {
		return h.renderActivate(c, http.StatusOK, views.Activate{})
	}
	if err := h.allowActivate(c); err != nil {
		return h.renderActivate(c, apperr.CodeOf(err).Status(), views.Activate{Code: code, Error: apperr.As(err).Message})
	}
	req, err := h.Devices.Lookup(c.Request().Context(), code)
	if e := apperr.As(err); e != nil {
		return h.renderActivate(c, e.Code.Status(), views.Activate{Code: code, Error: e.Message, ErrorField: e.Field})
	}
	if err != nil {
		return err
	}
	return h.renderActivate(c, http.StatusOK, activateView(req))
}

// activate records the person's decision on a waiting sign-in.
func (h *Handler) activate(c echo.Context) error {
	code, decision := c.FormValue("user_code"), c.FormValue("decision")
	if decision != "approve" && decision != "deny" {
		return h.renderActivate(c, http.StatusBadRequest, views.Activate{Code: code, Error: apperr.Field("decision", "must be approve or deny").Message})
	}
	if err := h.allowActivate(c); err != nil {
		return h.renderActivate(c, apperr.CodeOf(err).Status(), views.Activate{Code: code, Error: apperr.As(err).Message})
	}
	wsID, err := uuid.Parse(c.FormValue("workspace_id"))
	if err != nil && decision == "approve" {
		return h.again(c, code, apperr.Field("workspace_id", "pick the workspace the device's key goes to"))
	}
	req, ws, err := h.Devices.Decide(c.Request().Context(), currentUser(c).ID, code, wsID, decision == "approve")
	if apperr.As(err) != nil {
		return h.again(c, code, err)
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ActivateDonePage(h.shell(c, "Sign in a device", "keys"), views.ActivateDone{
		Approved: decision == "approve", ClientName: req.ClientName, WorkspaceName: ws.Name,
	}))
}

// again shows the decision form once more with what went wrong; when the code no
// longer names a waiting sign-in, only the message and the code form.
func (h *Handler) again(c echo.Context, code string, cause error) error {
	e := apperr.As(cause)
	v := views.Activate{Code: code}
	if req, err := h.Devices.Lookup(c.Request().Context(), code); err == nil {
		v = activateView(req)
	}
	v.Error = e.Message
	return h.renderActivate(c, e.Code.Status(), v)
}

// allowActivate spends one of the person's code attempts (metering.ActivateLimit).
func (h *Handler) allowActivate(c echo.Context) error {
	d := h.Meter.AllowActivate(c.Request().Context(), currentUser(c).ID)
	if d.Allowed {
		return nil
	}
	wait := max(int(d.RetryAfter.Seconds()+0.999), 1)
	c.Response().Header().Set("Retry-After", strconv.Itoa(wait))
	return apperr.New(apperr.RateLimited, "Too many codes tried. Wait %s and try again.", waitText(wait))
}

func activateView(r device.Request) views.Activate {
	return views.Activate{
		Code: r.UserCode, Abilities: deviceAbilities,
		Device: &views.ActivateDevice{
			ClientName: r.ClientName, IP: r.IP, UserAgent: r.UserAgent,
			Requested: formatTime(&r.CreatedAt), Expires: "in " + waitText(max(int(time.Until(r.ExpiresAt).Seconds()), 1)),
		},
	}
}

func (h *Handler) renderActivate(c echo.Context, status int, a views.Activate) error {
	u, cur := currentUser(c), currentWorkspace(c)
	all, err := h.Workspaces.ListForUser(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	for _, w := range all {
		v := views.ActivateWorkspace{ID: w.ID.String(), Name: w.Name, Role: w.Role, Selected: w.ID == cur.ID}
		if !w.Allows(workspace.RoleMember) {
			v.Disabled = "your role cannot make keys here"
		}
		a.Workspaces = append(a.Workspaces, v)
	}
	return render(c, status, views.ActivatePage(h.shell(c, "Sign in a device", "keys"), a))
}
