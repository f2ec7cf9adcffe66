package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// maxKeyLifetimeDays bounds expires_in_days: ten years is "never" for any purpose
// an expiry serves.
const maxKeyLifetimeDays = 3650

// showAPIKeys lists the workspace's keys, with the secret of one just made or
// rolled the first time the page loads after it.
func (h *Handler) showAPIKeys(c echo.Context) error {
	return h.renderKeys(c, http.StatusOK, views.Keys{New: h.takeNewKey(c)})
}

// revealNewKey sends the browser to the keys page, which shows the secret once:
// reloading it never posts the form again.
func (h *Handler) revealNewKey(c echo.Context, k *views.NewKey) error {
	if err := h.stashNewKey(c, k); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/dashboard/keys")
}

// createAPIKey mints a key with the chosen scopes and expiry and shows it once.
func (h *Handler) createAPIKey(c echo.Context) error {
	ws, u := currentWorkspace(c), currentUser(c)
	form, err := c.FormParams()
	if err != nil {
		return apperr.New(apperr.Invalid, "The form could not be read.")
	}
	name, days := form.Get("name"), strings.TrimSpace(form.Get("expires_in_days"))
	keep := views.Keys{Name: name, ExpiresInDays: days, Scopes: form["scopes"]}
	spec := apikey.Spec{Name: name}
	if spec.Scopes, err = apikey.ParseScopes(form["scopes"]); err == nil && days != "" {
		n, perr := strconv.Atoi(days)
		if perr != nil || n < 1 || n > maxKeyLifetimeDays {
			err = apperr.Field("expires_in_days", "a whole number of days from 1 to %d, or empty for a key that never expires", maxKeyLifetimeDays)
		}
		spec.ExpiresIn = time.Duration(n) * 24 * time.Hour
	}
	var created apikey.Created
	if err == nil {
		created, err = h.Keys.CreateWith(c.Request().Context(), ws.ID, &u.ID, spec)
	}
	if e := apperr.As(err); e != nil {
		keep.Error, keep.ErrorField = e.Message, e.Field
		return h.renderKeys(c, e.Code.Status(), keep)
	}
	if err != nil {
		return err
	}
	return h.revealNewKey(c, newKeyView(created, nil))
}

// rollAPIKey gives a key a new secret, shown once; the old one works for the
// chosen grace.
func (h *Handler) rollAPIKey(c echo.Context) error {
	ws, u := currentWorkspace(c), currentUser(c)
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such key.")
	}
	hours, err := strconv.Atoi(strings.TrimSpace(c.FormValue("grace_hours")))
	if err != nil || hours < 0 || hours > int(apikey.MaxGrace.Hours()) {
		return h.renderKeys(c, http.StatusBadRequest, views.Keys{
			Error: apperr.Field("grace_hours", "choose how long the old secret keeps working: 0 to %d hours", int(apikey.MaxGrace.Hours())).Message,
		})
	}
	grace := time.Duration(hours) * time.Hour
	rolled, err := h.Keys.Roll(c.Request().Context(), ws, id, u.ID, grace)
	if e := apperr.As(err); e != nil {
		return h.renderKeys(c, e.Code.Status(), views.Keys{Error: e.Message})
	}
	if err != nil {
		return err
	}
	until := time.Now().Add(grace)
	return h.revealNewKey(c, newKeyView(rolled, &until))
}

// revokeAPIKey revokes one of the workspace's keys.
func (h *Handler) revokeAPIKey(c echo.Context) error {
	ws, u := currentWorkspace(c), currentUser(c)
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return apperr.New(apperr.NotFound, "No such key.")
	}
	if err := h.Keys.Revoke(c.Request().Context(), ws, id, u.ID); err != nil {
		return err
	}
	h.flash(c, "Key revoked. Requests using it are refused from now on.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/keys")
}

// newKeyView shows a secret just made; oldUntil is set after a roll.
func newKeyView(k apikey.Created, oldUntil *time.Time) *views.NewKey {
	v := &views.NewKey{Name: k.Name, Secret: k.Secret, Scopes: scopeList(k.Scopes), Expires: expiryText(k.ExpiresAt)}
	if oldUntil != nil {
		v.Rolled = true
		if time.Until(*oldUntil) > 0 {
			v.OldUntil = formatTime(oldUntil)
		}
	}
	return v
}

// renderKeys shows admins and owners every key of the workspace with who made it;
// members see the keys they made, the only ones they may roll or revoke.
func (h *Handler) renderKeys(c echo.Context, status int, k views.Keys) error {
	ws, u := currentWorkspace(c), currentUser(c)
	keys, err := h.Keys.List(c.Request().Context(), ws.ID)
	if err != nil {
		return err
	}
	now := time.Now()
	limit := h.Config.Plans.Get(ws.Plan).Limits.APIKeys
	k.Active = countActive(keys, now)
	k.Limit = plan.Format(int64(limit))
	k.AtLimit = limit != plan.Unlimited && k.Active >= limit
	k.CanManage = ws.CanManage()
	if k.AtLimit && k.Error == "" && k.New == nil {
		k.Error = apikey.CapError(h.Config.Plans, ws.Plan, k.Active).(*apperr.Error).Message
	}
	chosen := map[string]bool{}
	for _, s := range k.Scopes {
		chosen[s] = true
	}
	for _, name := range apikey.ScopeNames() {
		// A fresh form offers every scope; a refused one keeps what was ticked.
		k.ScopeOptions = append(k.ScopeOptions, views.ScopeOption{Name: name, Checked: len(k.Scopes) == 0 || chosen[name]})
	}
	for _, key := range keys {
		if !k.CanManage && key.CreatedBy != u.ID {
			if key.RevokedAt == nil && !key.Expired(now) {
				k.OthersActive++
			}
			continue
		}
		creator := key.CreatorEmail
		if key.CreatedBy == uuid.Nil {
			creator = "an operator"
		} else if creator == "" {
			creator = "a deleted account"
		}
		row := views.Key{
			ID: key.ID.String(), Name: key.Name, Prefix: key.Prefix, Creator: creator, Device: key.Kind == apikey.KindDevice,
			Scopes: scopeList(key.Scopes), Created: formatTime(&key.CreatedAt), LastUsed: formatTime(key.LastUsedAt),
			LastIP: key.LastIP, LastUserAgent: key.LastUserAgent, Expires: expiryText(key.ExpiresAt),
			Expired: key.Expired(now), Revoked: formatTime(key.RevokedAt), IsRevoked: key.RevokedAt != nil,
		}
		for _, p := range key.Previous {
			row.Previous = append(row.Previous, p.Prefix+"… works until "+formatTime(&p.ValidUntil))
		}
		if row.IsRevoked {
			k.Revoked = append(k.Revoked, row)
		} else {
			k.Keys = append(k.Keys, row)
		}
	}
	return render(c, status, views.KeysPage(h.shell(c, "API keys", "keys"), k))
}

// scopeList names a key's scopes for the page: "all scopes" rather than the list.
func scopeList(s apikey.Scopes) string {
	if s == apikey.AllScopes {
		return "all scopes"
	}
	return strings.Join(s.Names(), ", ")
}

func expiryText(t *time.Time) string {
	if t == nil {
		return "Never"
	}
	return formatTime(t)
}

// countActive counts the keys that still work: not revoked, not expired.
func countActive(keys []apikey.Key, now time.Time) int {
	n := 0
	for _, k := range keys {
		if k.RevokedAt == nil && !k.Expired(now) {
			n++
		}
	}
	return n
}
