package web

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// sessNotice holds a message of any kind for the next page the session sees, as
// JSON (the session store keeps strings); sessFlash holds a plain success line.
const sessNotice = "notice"

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
	ctx := c.Request().Context()
	if s := h.Sessions.PopString(ctx, sessNotice); s != "" {
		var m views.Message
		if json.Unmarshal([]byte(s), &m) == nil && m.Text != "" {
			return &m
		}
	}
	if f := h.Sessions.PopString(ctx, sessFlash); f != "" {
		return &views.Message{Kind: "ok", Text: f}
	}
	return nil
}
