package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/views"
)

// exportAccount streams the zip of everything the signed-in person's account holds
// (account.Service.Export) as it is read, so its size never sits in memory. A
// failure once the zip has started cannot become an error page: the connection is
// cut instead, so the download fails visibly rather than ending in a truncated zip.
// Before the first bytes (the database down) it is the usual error page.
func (h *Handler) exportAccount(c echo.Context) error {
	u := currentUser(c)
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, "application/zip")
	hd.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="cairn-export-%s.zip"`, time.Now().UTC().Format("2006-01-02")))
	hd.Set("Cache-Control", "no-store")
	if err := h.Account.Export(c.Request().Context(), u.ID, c.Response()); err != nil {
		if !c.Response().Committed {
			hd.Del(echo.HeaderContentType)
			hd.Del(echo.HeaderContentDisposition)
			return err
		}
		h.Log.Error("web: account export failed part way; connection cut", "user_id", u.ID.String(), "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// deleteAccount deletes the signed-in person's account (account.Service.Delete)
// and ends this session. The password is checked first as the other Settings forms
// check it (wrong ones count against this address, so a borrowed session cannot
// guess it); a wrong or missing one comes back on the field. A workspace that must
// change hands first takes them back to Settings with the reason and a link to Team.
func (h *Handler) deleteAccount(c echo.Context) error {
	ctx, u := c.Request().Context(), currentUser(c)
	password := c.FormValue("current_password")
	err := h.Auth.CheckCurrent(ctx, u.ID, metering.ClientKey(c.RealIP()), password)
	if err == nil {
		err = h.Account.Delete(ctx, u.ID, password)
	}
	if e := apperr.As(err); e != nil && e.Code == apperr.Conflict {
		h.flashMessage(c, views.Message{Kind: "error", Text: e.Message, Href: "/dashboard/team", Action: "Go to Team"})
		return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
	}
	if e := apperr.As(err); e != nil && e.Field != "" {
		return h.settingsRefused(c, "delete", err, func(p *views.Settings) {
			k := "delete." + e.Field
			p.Errors[k] = strings.TrimSuffix(p.Errors[k], ".") + ". Your account was not deleted."
		})
	}
	if err != nil {
		return err
	}
	if err := h.Sessions.Destroy(ctx); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
