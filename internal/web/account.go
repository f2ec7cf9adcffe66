package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
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
// and ends this session. A wrong password, or a workspace that must change hands
// first, takes them back to Settings with the reason (and a link to Team).
func (h *Handler) deleteAccount(c echo.Context) error {
	u := currentUser(c)
	err := h.Account.Delete(c.Request().Context(), u.ID, c.FormValue("current_password"))
	if e := apperr.As(err); e != nil && (e.Code == apperr.Conflict || e.Code == apperr.Invalid) {
		m := views.Message{Kind: "error", Text: e.Message}
		if e.Code == apperr.Conflict {
			m.Href, m.Action = "/dashboard/team", "Go to Team"
		}
		if e.Field == "current_password" {
			m.Text = "Your account was not deleted: that is not your current password."
		}
		h.flashMessage(c, m)
		return c.Redirect(http.StatusSeeOther, "/dashboard/settings")
	}
	if err != nil {
		return err
	}
	if err := h.Sessions.Destroy(c.Request().Context()); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/")
}
