package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

// billed runs a billable retrieval call (a search, an answer) for the signed-in
// workspace the way the API runs one: the workspace's per-minute rate first, then
// the monthly quota, which the service takes once the call passed its cheap checks
// and which is given back when the call fails; the call is recorded as a usage
// event (with no key) so it shows beside the API's. A session is no way around
// what the plan allows. what names the calls in the rate-limit message.
func (h *Handler) billed(c echo.Context, what string, call func(ctx context.Context, caller retrieval.Caller) error) error {
	ctx := c.Request().Context()
	ws := currentWorkspace(c)
	p := h.Config.Plans.Get(ws.Plan)
	if d := h.Meter.AllowDashboardSearch(ctx, ws.ID, ws.Plan); !d.Allowed {
		return d.Refuse(fmt.Sprintf("Too many %s this minute for the %s plan. Wait %s and try again.", what, p.Name, waitText(d.Wait())))
	}
	start := time.Now()
	charge := h.Meter.NewCharge(ws.ID, ws.Plan, p.Limits.RequestsPerMonth)
	err := call(ctx, retrieval.Caller{WorkspaceID: ws.ID, Plan: ws.Plan, Quota: charge})
	if serr := charge.Settle(ctx, err == nil); serr != nil {
		h.Log.Error("quota refund failed; one request stays counted", "request_id", reqctx.RequestID(c), "err", serr)
	}
	status := http.StatusOK
	if err != nil {
		status = apperr.CodeOf(err).Status()
	}
	h.Meter.Record(metering.Event{
		At: start, WorkspaceID: ws.ID, KeyID: uuid.Nil, Method: c.Request().Method, Route: c.Path(),
		Status: status, Latency: time.Since(start), Billable: err == nil, RequestID: reqctx.RequestID(c),
	})
	return err
}
