package metering

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/csvcell"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
)

// Summary is a workspace's standing against its plan this period: what /v1/usage
// returns and what the dashboard's overview and banners show.
type Summary struct {
	Plan           plan.Plan
	PeriodStart    time.Time
	PeriodEnd      time.Time
	RequestsUsed   int64
	RequestsLimit  int64 // plan.Unlimited when unlimited
	RatePerMinute  int
	DocumentsUsed  int64
	DocumentsLimit int64 // plan.Unlimited when unlimited
}

// Percent returns how much of the monthly quota is used, 0..100 (capped), or -1
// when the plan is unlimited.
func (s Summary) Percent() int {
	if s.RequestsLimit == plan.Unlimited {
		return -1
	}
	if s.RequestsLimit <= 0 || s.RequestsUsed >= s.RequestsLimit {
		return 100
	}
	return int(s.RequestsUsed * 100 / s.RequestsLimit)
}

// Threshold returns the highest of Thresholds the usage has reached, or 0.
func (s Summary) Threshold() int {
	if s.RequestsLimit == plan.Unlimited {
		return 0
	}
	reached := 0
	for _, pct := range Thresholds {
		if s.RequestsUsed >= ThresholdUnits(s.RequestsLimit, pct) {
			reached = pct
		}
	}
	return reached
}

// DocumentCounter counts a workspace's stored documents.
type DocumentCounter func(ctx context.Context, workspaceID uuid.UUID) (int64, error)

// Summary returns workspace ws's usage this period under plan p.
func (s *Service) Summary(ctx context.Context, ws uuid.UUID, p plan.ID) (Summary, error) {
	now := s.now()
	pl := s.plans.Get(p)
	start, end := Period(now)
	out := Summary{
		Plan: pl, PeriodStart: start, PeriodEnd: end,
		RequestsLimit: pl.Limits.RequestsPerMonth, RatePerMinute: pl.Limits.RatePerMinute,
		DocumentsLimit: int64(pl.Limits.Documents),
	}
	var err error
	if out.RequestsUsed, err = s.RequestsUsed(ctx, ws, out.RequestsLimit, now); err != nil {
		return Summary{}, err
	}
	if s.documents != nil {
		if out.DocumentsUsed, err = s.documents(ctx, ws); err != nil {
			return Summary{}, fmt.Errorf("metering: count documents: %w", err)
		}
	}
	return out, nil
}

// ReportDays is how many days the usage report covers, today included.
const ReportDays = 30

// Report is a workspace's usage over the last ReportDays days, for the dashboard.
type Report struct {
	Since      time.Time  // the first day covered (UTC midnight)
	Days       []DayCount // one per day, oldest first, zero-filled
	ByKey      []KeyCount
	ByEndpoint []EndpointCount
	ByStatus   []StatusCount
	Requests   int64
	Billable   int64
}

// DayCount is one day of the report.
type DayCount struct {
	Day      time.Time
	Requests int64
	Billable int64
}

// KeyCount is one API key's requests in the report.
type KeyCount struct {
	KeyID    uuid.UUID
	Name     string
	Prefix   string
	Revoked  bool
	Requests int64
	Billable int64
}

// EndpointCount is one endpoint's requests in the report.
type EndpointCount struct {
	Endpoint   string // "POST /v1/search"
	Requests   int64
	Billable   int64
	AvgLatency time.Duration
}

// StatusCount is the requests that got one HTTP status.
type StatusCount struct {
	Status   int
	Requests int64
	Billable int64
}

// reportSince returns the first day of the report window ending today.
func (s *Service) reportSince() time.Time {
	now := s.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return today.AddDate(0, 0, -(ReportDays - 1))
}

// Report returns workspace ws's usage over the last ReportDays days from the daily
// roll-up (which trails requests by up to a second).
func (s *Service) Report(ctx context.Context, ws uuid.UUID) (Report, error) {
	since := s.reportSince()
	r := Report{Since: since, Days: make([]DayCount, ReportDays)}
	for i := range r.Days {
		r.Days[i].Day = since.AddDate(0, 0, i)
	}
	days, err := s.q.UsageByDay(ctx, dbq.UsageByDayParams{WorkspaceID: ws, Since: since})
	if err != nil {
		return Report{}, fmt.Errorf("metering: report by day: %w", err)
	}
	for _, d := range days {
		if i := int(d.Day.Sub(since).Hours() / 24); i >= 0 && i < ReportDays {
			r.Days[i].Requests, r.Days[i].Billable = d.Requests, d.Billable
		}
		r.Requests += d.Requests
		r.Billable += d.Billable
	}
	keys, err := s.q.UsageByKey(ctx, dbq.UsageByKeyParams{WorkspaceID: ws, Since: since})
	if err != nil {
		return Report{}, fmt.Errorf("metering: report by key: %w", err)
	}
	for _, k := range keys {
		r.ByKey = append(r.ByKey, KeyCount{KeyID: k.KeyID, Name: k.Name, Prefix: k.Prefix, Revoked: k.Revoked, Requests: k.Requests, Billable: k.Billable})
	}
	eps, err := s.q.UsageByEndpoint(ctx, dbq.UsageByEndpointParams{WorkspaceID: ws, Since: since})
	if err != nil {
		return Report{}, fmt.Errorf("metering: report by endpoint: %w", err)
	}
	for _, e := range eps {
		r.ByEndpoint = append(r.ByEndpoint, EndpointCount{Endpoint: e.Endpoint, Requests: e.Requests, Billable: e.Billable, AvgLatency: time.Duration(e.AvgLatencyUs) * time.Microsecond})
	}
	sts, err := s.q.UsageByStatus(ctx, dbq.UsageByStatusParams{WorkspaceID: ws, Since: since})
	if err != nil {
		return Report{}, fmt.Errorf("metering: report by status: %w", err)
	}
	for _, st := range sts {
		r.ByStatus = append(r.ByStatus, StatusCount{Status: int(st.Status), Requests: st.Requests, Billable: st.Billable})
	}
	return r, nil
}

// WriteCSV writes workspace ws's daily usage over the report window as CSV: one
// row per day, key, endpoint and status.
func (s *Service) WriteCSV(ctx context.Context, ws uuid.UUID, w io.Writer) error {
	rows, err := s.q.UsageDailyList(ctx, dbq.UsageDailyListParams{WorkspaceID: ws, Since: s.reportSince()})
	if err != nil {
		return fmt.Errorf("metering: usage csv: %w", err)
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", "key_id", "key_name", "key_prefix", "endpoint", "status", "requests", "billable", "avg_latency_ms"})
	for _, r := range rows {
		avg := float64(r.LatencyUsSum) / float64(max(r.Requests, 1)) / 1000
		_ = cw.Write([]string{
			r.Day.Format(time.DateOnly), r.KeyID.String(), csvcell.Safe(r.KeyName), r.KeyPrefix, r.Endpoint,
			strconv.Itoa(int(r.Status)), strconv.FormatInt(r.Requests, 10), strconv.FormatInt(r.Billable, 10),
			strconv.FormatFloat(avg, 'f', 1, 64),
		})
	}
	cw.Flush()
	return cw.Error()
}
