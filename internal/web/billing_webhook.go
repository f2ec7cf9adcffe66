package web

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/billing"
)

// stripeWebhook verifies and applies one Stripe event. The signature covers the raw
// body, so it is read as bytes and never re-encoded.
func (h *Handler) stripeWebhook(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, billing.MaxWebhookBody+1))
	if err != nil {
		return apperr.New(apperr.Invalid, "Could not read the request body.")
	}
	if len(body) > billing.MaxWebhookBody {
		return apperr.New(apperr.TooLarge, "The webhook body is over 1 MiB.")
	}
	if err := h.Billing.HandleWebhook(c.Request().Context(), body, c.Request().Header.Get("Stripe-Signature")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"received": true})
}
