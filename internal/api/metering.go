package api

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/reqctx"
)

// recordUsage records every /v1 request that reaches a route as a usage event,
// after the response is written. It turns a returned error into its response here
// so that the event carries the status the caller saw.
func (a *API) recordUsage(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				// Recorded as the 500 the recover middleware will answer with.
				a.record(c, start, http.StatusInternalServerError)
				panic(r)
			}
		}()
		if err := next(c); err != nil {
			c.Error(err)
		}
		a.record(c, start, c.Response().Status)
		return nil
	}
}

func (a *API) record(c echo.Context, start time.Time, status int) {
	ev := metering.Event{
		At: start, Method: c.Request().Method, Route: c.Path(), Status: status,
		Latency: time.Since(start), RequestID: reqctx.RequestID(c),
	}
	if p, ok := reqctx.Principal(c); ok {
		ev.WorkspaceID, ev.KeyID = p.WorkspaceID, p.KeyID
		ev.Billable = status < http.StatusBadRequest && !failedLate(c) && metering.Billable(ev.Method, ev.Route)
	}
	a.Meter.Record(ev)
}

// limitUnauthenticated charges requests refused for want of a valid key to their
// IP's daily budget; once it is spent they get 429 instead of 401, which also
// stops anyone guessing keys from one address.
func (a *API) limitUnauthenticated(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if !apperr.Is(err, apperr.Unauthorized) {
			return err
		}
		closeUnread(c)
		if limited := a.chargeIP(c); limited != nil {
			return limited
		}
		return err
	}
}

// chargeIP takes one request from the client address's daily budget and sets the
// RateLimit fields; over the budget it returns the 429.
func (a *API) chargeIP(c echo.Context) error {
	d := a.Meter.AllowIP(c.Request().Context(), c.RealIP())
	setRateHeaders(c.Response().Header(), d)
	if !d.Allowed {
		return rateLimited(d, "Too many requests without a valid API key from this address")
	}
	return nil
}

// limitOptionalKey rate-limits a route that needs no key (GET /v1/openapi.json):
// under the key's budget when a valid one is sent, otherwise under the IP's daily
// budget like any keyless call, so its response carries the RateLimit fields too.
// A bad key is ignored rather than refused, since none is needed.
func (a *API) limitOptionalKey(next echo.HandlerFunc) echo.HandlerFunc {
	keyed := a.rateLimit(next)
	return func(c echo.Context) error {
		if key, err := keyFromRequest(c.Request()); err == nil {
			if p, err := a.Keys.Verify(c.Request().Context(), key); err == nil {
				reqctx.SetPrincipal(c, p)
				return keyed(c)
			}
		}
		if err := a.chargeIP(c); err != nil {
			return err
		}
		return next(c)
	}
}

// rateLimit applies the key's per-minute budget under its workspace's plan and
// reports it in the RateLimit headers of every response.
func (a *API) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := principal(c)
		d := a.Meter.AllowKey(c.Request().Context(), p.KeyID, p.Plan)
		setRateHeaders(c.Response().Header(), d)
		if !d.Allowed {
			closeUnread(c)
			return rateLimited(d, "This API key is over its plan's rate limit")
		}
		return next(c)
	}
}

// keyCharge holds a billable request's *metering.Charge in echo's context.
const keyCharge = "cairn.api.charge"

// quota gives each billable request a charge on the workspace's monthly quota,
// which the retrieval service takes once the request has passed its cheap checks
// (see retrieval.Caller.Quota), and settles it when the response is written: a
// request that failed (any 4xx or 5xx, a stream that broke, a panic) gets its
// unit back, so only requests that succeed are billed.
func (a *API) quota(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !metering.Billable(c.Request().Method, c.Path()) {
			return next(c)
		}
		p := principal(c)
		ch := a.Meter.NewCharge(p.WorkspaceID, p.Plan, a.Plans.Get(p.Plan).Limits.RequestsPerMonth)
		c.Set(keyCharge, ch)
		finished := false
		defer func() {
			if !finished {
				a.settle(c, ch, false)
			}
		}()
		if err := next(c); err != nil {
			c.Error(err)
		}
		finished = true
		a.settle(c, ch, succeeded(c))
		return nil
	}
}

// charge returns the request's quota charge, or nil for requests that are not billable.
func charge(c echo.Context) *metering.Charge {
	ch, _ := c.Get(keyCharge).(*metering.Charge)
	return ch
}

// keyFailed marks a request that failed after its 200 status was sent (a broken stream).
const keyFailed = "cairn.api.failed"

// markFailed records that a request whose status already went out failed after all.
func markFailed(c echo.Context) { c.Set(keyFailed, true) }

// failedLate reports whether markFailed was called.
func failedLate(c echo.Context) bool {
	failed, _ := c.Get(keyFailed).(bool)
	return failed
}

// succeeded reports whether the request did what it was asked: a status below 400
// and no failure after it.
func succeeded(c echo.Context) bool {
	return c.Response().Status < http.StatusBadRequest && !failedLate(c)
}

func (a *API) settle(c echo.Context, ch *metering.Charge, ok bool) {
	if err := ch.Settle(c.Request().Context(), ok); err != nil {
		a.Log.Error("quota refund failed; one request stays counted", "request_id", reqctx.RequestID(c), "err", err)
	}
}

// closeUnread marks the connection of a request refused before its body was read
// to close after the answer. Otherwise Go's server would first read (up to 256 KiB
// of) the unwanted body to keep the connection, and a client that declares a body
// it never sends would wait for its refusal until the read times out.
func closeUnread(c echo.Context) {
	if r := c.Request(); r.ContentLength != 0 {
		c.Response().Header().Set(echo.HeaderConnection, "close")
	}
}

func rateLimited(d metering.Decision, msg string) error {
	return d.Refuse(fmt.Sprintf("%s (%d requests per %s); retry in %d s.", msg, d.Limit.Rate, d.Limit.Window, d.Wait()))
}

// policies caches the RateLimit-Policy value of each limit (there are a handful)
// in a copy-on-write map: readers take no lock and box nothing.
var (
	policies   atomic.Pointer[map[metering.Limit][]string]
	policiesMu sync.Mutex
)

func policyHeader(l metering.Limit) []string {
	if m := policies.Load(); m != nil {
		if v, ok := (*m)[l]; ok {
			return v
		}
	}
	policiesMu.Lock()
	defer policiesMu.Unlock()
	next := map[metering.Limit][]string{}
	if m := policies.Load(); m != nil {
		maps.Copy(next, *m)
	}
	v := []string{fmt.Sprintf("%q;q=%d;w=%d", l.Window, l.Rate, int(l.Period.Seconds()))}
	next[l] = v
	policies.Store(&next)
	return v
}

// setRateHeaders writes the RateLimit and RateLimit-Policy fields of
// draft-ietf-httpapi-ratelimit-headers: the policy's quota and window, what is
// left, and the seconds until the budget is full again.
func setRateHeaders(h http.Header, d metering.Decision) {
	if d.Remaining < 0 { // no limit applies
		return
	}
	var buf [64]byte
	b := append(buf[:0], '"')
	b = append(b, d.Limit.Window...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(ceilSeconds(d.ResetAfter)), 10)
	// The cached slice is shared by every response; headers are only read after this.
	h["Ratelimit-Policy"] = policyHeader(d.Limit)
	h["Ratelimit"] = []string{string(b)}
}

// ceilSeconds rounds up to whole seconds, at least 1 for any positive duration.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}
