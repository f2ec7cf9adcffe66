package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// showUsage renders the last 30 days of the workspace's API usage.
func (h *Handler) showUsage(c echo.Context) error {
	ws := currentWorkspace(c)
	sum, err := h.summary(c)
	if err != nil {
		return err
	}
	r, err := h.Meter.Report(c.Request().Context(), ws.ID)
	if err != nil {
		return err
	}
	u := views.Usage{
		PlanName:      sum.Plan.Name,
		RequestsUsed:  sum.RequestsUsed,
		RequestsLimit: plan.Format(sum.RequestsLimit),
		RequestsPct:   sum.Percent(),
		ResetsOn:      sum.PeriodEnd.Format("2 Jan 2006"),
		Total:         r.Requests,
		Billable:      r.Billable,
		Chart:         usageChart(r.Days),
	}
	for _, k := range r.ByKey {
		name := k.Name
		switch {
		case k.KeyID == uuid.Nil:
			name = "Dashboard" // searches made signed in, without a key
		case name == "":
			name = "Deleted key"
		}
		if k.Revoked {
			name += " (revoked)"
		}
		detail := k.Prefix + "…"
		if k.KeyID == uuid.Nil {
			detail = "signed in"
		}
		u.ByKey = append(u.ByKey, views.UsageRow{Label: name, Detail: detail, Muted: k.Revoked, Requests: k.Requests, Billable: k.Billable, Share: share(k.Requests, r.Requests)})
	}
	for _, e := range r.ByEndpoint {
		u.ByEndpoint = append(u.ByEndpoint, views.UsageRow{Label: e.Endpoint, Detail: fmt.Sprintf("avg %.1f ms", float64(e.AvgLatency)/float64(time.Millisecond)), Requests: e.Requests, Billable: e.Billable, Share: share(e.Requests, r.Requests)})
	}
	for _, st := range r.ByStatus {
		u.ByStatus = append(u.ByStatus, views.UsageRow{Label: strconv.Itoa(st.Status), Detail: http.StatusText(st.Status), Requests: st.Requests, Billable: st.Billable, Share: share(st.Requests, r.Requests)})
	}
	return render(c, http.StatusOK, views.UsagePage(h.shell(c, "Usage", "usage"), u))
}

// exportUsage sends the 30-day roll-up as CSV. It is built before anything is sent
// (30 days of roll-up rows are small) so that a failed read gets the error page,
// not a 200 download of an empty file.
func (h *Handler) exportUsage(c echo.Context) error {
	ws := currentWorkspace(c)
	var buf bytes.Buffer
	if err := h.Meter.WriteCSV(c.Request().Context(), ws.ID, &buf); err != nil {
		return err
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="cairn-usage-%s.csv"`, time.Now().UTC().Format("2006-01-02")))
	hd.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

func share(n, total int64) int {
	if total <= 0 {
		return 0
	}
	return int(n * 100 / total)
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH        = 760, 260
	chartLeft, chartRight = 52, 748
	chartTop, chartBase   = 12, 228
)

// usageChart lays out one bar per day on a "nice" y scale.
func usageChart(days []metering.DayCount) views.Chart {
	var peak, total int64
	for _, d := range days {
		peak = max(peak, d.Requests)
		total += d.Requests
	}
	top, step := niceScale(peak)
	c := views.Chart{
		Width: chartW, Height: chartH, PlotLeft: chartLeft, PlotRight: chartRight, Baseline: chartBase,
		Summary: fmt.Sprintf("Requests per day over the last %d days: %d in total, at most %d in a day.", len(days), total, peak),
	}
	y := func(v int64) int { return chartBase - int(v*int64(chartBase-chartTop)/top) }
	for v := int64(0); v <= top; v += step {
		c.YTicks = append(c.YTicks, views.ChartTick{Pos: y(v), Label: plan.Format(v)})
	}
	if len(days) == 0 {
		return c
	}
	slot := (chartRight - chartLeft) / len(days)
	w := max(slot*7/10, 2)
	for i, d := range days {
		x := chartLeft + i*slot + (slot-w)/2
		b := views.ChartBar{
			X: x, W: w, Y: y(d.Requests), H: chartBase - y(d.Requests),
			BY: y(d.Billable), BH: chartBase - y(d.Billable),
			Day: d.Day.Format(time.DateOnly), Requests: d.Requests, BillableReq: d.Billable,
			Title: fmt.Sprintf("%s: %d requests, %d billable", d.Day.Format("Mon 2 Jan"), d.Requests, d.Billable),
		}
		if d.Requests > 0 && b.H < 1 {
			b.Y, b.H = chartBase-1, 1 // a day with traffic is never invisible
		}
		c.Bars = append(c.Bars, b)
		if (len(days)-1-i)%7 == 0 { // today, and every week back from it
			c.XLabels = append(c.XLabels, views.ChartTick{Pos: x + w/2, Label: d.Day.Format("2 Jan")})
		}
	}
	return c
}

// niceScale returns an axis top at or above peak and a tick step, both 1, 2 or 5
// times a power of ten, with four or five ticks.
func niceScale(peak int64) (top, step int64) {
	if peak <= 4 {
		return 4, 1
	}
	raw := (peak + 3) / 4
	mag := int64(1)
	for mag*10 <= raw {
		mag *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	top = (peak + step - 1) / step * step
	return top, step
}
