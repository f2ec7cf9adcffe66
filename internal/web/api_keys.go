package web

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// showAPIKeys lists the workspace's keys.
func (h *Handler) showAPIKeys(c echo.Context) error {
	return h.renderKeys(c, http.StatusOK, views.Keys{})
}

// createAPIKey mints a key and shows it once.
func (h *Handler) createAPIKey(c echo.Context) error {
	ws, u := currentWorkspace(c), currentUser(c)
	name := c.FormValue("name")
	created, err := h.Keys.Create(c.Request().Context(), ws.ID, &u.ID, name)
	if e := apperr.As(err); e != nil {
		return h.renderKeys(c, e.Code.Status(), views.Keys{Error: e.Message, Name: name})
	}
	if err != nil {
		return err
	}
	return h.renderKeys(c, http.StatusOK, views.Keys{New: &views.NewKey{Name: created.Name, Secret: created.Secret}})
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

// renderKeys shows admins and owners every key of the workspace with who made it;
// members see the keys they made, the only ones they may revoke.
func (h *Handler) renderKeys(c echo.Context, status int, k views.Keys) error {
	ws, u := currentWorkspace(c), currentUser(c)
	keys, err := h.Keys.List(c.Request().Context(), ws.ID)
	if err != nil {
		return err
	}
	limit := h.Config.Plans.Get(ws.Plan).Limits.APIKeys
	k.Active = countActive(keys)
	k.Limit = plan.Format(int64(limit))
	k.AtLimit = limit != plan.Unlimited && k.Active >= limit
	k.CanManage = ws.CanManage()
	if k.AtLimit && k.Error == "" && k.New == nil {
		k.Error = apikey.CapError(h.Config.Plans, ws.Plan, k.Active).(*apperr.Error).Message
	}
	for _, key := range keys {
		if !k.CanManage && key.CreatedBy != u.ID {
			if key.RevokedAt == nil {
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
		k.Keys = append(k.Keys, views.Key{
			ID: key.ID.String(), Name: key.Name, Prefix: key.Prefix, Creator: creator,
			Created: formatTime(&key.CreatedAt), LastUsed: formatTime(key.LastUsedAt),
			Revoked: formatTime(key.RevokedAt), IsRevoked: key.RevokedAt != nil,
		})
	}
	return render(c, status, views.KeysPage(h.shell(c, "API keys", "keys"), k))
}

func countActive(keys []apikey.Key) int {
	n := 0
	for _, k := range keys {
		if k.RevokedAt == nil {
			n++
		}
	}
	return n
}
