package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
)

type usageResponse struct {
	Plan      string      `json:"plan"`
	Period    usagePeriod `json:"period"`
	Requests  usageCount  `json:"requests"`
	RateLimit usageRate   `json:"rate_limit"`
	Documents usageCount  `json:"documents"`
}

type usagePeriod struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type usageCount struct {
	Used  int64  `json:"used"`
	Limit *int64 `json:"limit"` // null when unlimited
}

type usageRate struct {
	Limit         *int64 `json:"limit"` // null when unlimited
	WindowSeconds int    `json:"window_seconds"`
}

// usage answers what the workspace used this month against its plan.
func (a *API) usage(c echo.Context) error {
	p := principal(c)
	s, err := a.Meter.Summary(c.Request().Context(), p.WorkspaceID, p.Plan)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, usageResponse{
		Plan:      string(s.Plan.ID),
		Period:    usagePeriod{Start: s.PeriodStart, End: s.PeriodEnd},
		Requests:  usageCount{Used: s.RequestsUsed, Limit: limitOrNull(s.RequestsLimit)},
		RateLimit: usageRate{Limit: limitOrNull(int64(s.RatePerMinute)), WindowSeconds: 60},
		Documents: usageCount{Used: s.DocumentsUsed, Limit: limitOrNull(s.DocumentsLimit)},
	})
}

func limitOrNull(n int64) *int64 {
	if n == plan.Unlimited {
		return nil
	}
	return &n
}
