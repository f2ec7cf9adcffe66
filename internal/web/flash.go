package web

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// sessNotice holds the message for the next page the session sees, as JSON (the
// session store keeps strings).
const sessNotice = "notice"

// flash stores a success line for the next page this session sees.
func (h *Handler) flash(c echo.Context, msg string) {
	h.flashMessage(c, views.Message{Kind: "ok", Text: msg})
}

// flashMessage stores m for the next page this session sees.
func (h *Handler) flashMessage(c echo.Context, m views.Message) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	h.Sessions.Put(c.Request().Context(), sessNotice, string(b))
}

// popFlash takes the session's pending message out, if any.
func (h *Handler) popFlash(c echo.Context) *views.Message {
	var m views.Message
	s := h.Sessions.PopString(c.Request().Context(), sessNotice)
	if s == "" || json.Unmarshal([]byte(s), &m) != nil || m.Text == "" {
		return nil
	}
	return &m
}
