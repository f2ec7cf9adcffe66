package metering

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/plan"
)

// Thresholds are the shares of a quota, in percent, at which the workspace's owners
// get one email per period and the dashboard shows a banner.
var Thresholds = [...]int{80, 100}

// ThresholdUnits returns how many requests of limit reach pct percent, rounded up
// so that "80 %" of 5 is 4, never 3.
func ThresholdUnits(limit int64, pct int) int64 {
	return (limit*int64(pct) + 99) / 100
}

// notice is one quota email to send.
type notice struct {
	workspaceID uuid.UUID
	period      time.Time
	threshold   int
	used, limit int64
}

type noticeKey struct {
	workspaceID uuid.UUID
	period      time.Time
	threshold   int
}

// notices queues quota emails off the request path. seen stops a replica from
// queueing the same notice on every request past the threshold; the database row
// (quota_notices) stops replicas from sending it twice.
type notices struct {
	queue chan notice
	mu    sync.Mutex
	seen  map[noticeKey]bool
}

// noteThresholds queues the notices that used (of limit) reaches.
func (s *Service) noteThresholds(ws uuid.UUID, period time.Time, used, limit int64) {
	for _, pct := range Thresholds {
		if used < ThresholdUnits(limit, pct) {
			continue
		}
		k := noticeKey{ws, period, pct}
		s.notices.mu.Lock()
		dup := s.notices.seen[k]
		s.notices.seen[k] = true
		s.notices.mu.Unlock()
		if dup {
			continue
		}
		select {
		case s.notices.queue <- notice{workspaceID: ws, period: period, threshold: pct, used: used, limit: limit}:
		default:
			// The queue is full of emails; a later request past the threshold retries.
			s.unsee(k)
		}
	}
}

func (s *Service) unsee(k noticeKey) {
	s.notices.mu.Lock()
	delete(s.notices.seen, k)
	s.notices.mu.Unlock()
}

// RunNotices sends queued quota emails until ctx ends.
func (s *Service) RunNotices(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-s.notices.queue:
			if err := s.sendNotice(ctx, n); err != nil {
				s.log.Warn("metering: quota email not sent; will retry on the next request past the threshold",
					"workspace_id", n.workspaceID, "threshold", n.threshold, "err", err)
				s.unsee(noticeKey{n.workspaceID, n.period, n.threshold})
			}
		}
	}
}

// sendNotice claims the notice in the database (so exactly one replica sends it)
// and emails the workspace's owners and admins; when sending fails the claim is
// released so that it can be retried.
func (s *Service) sendNotice(ctx context.Context, n notice) error {
	claimed, err := s.q.QuotaNoticeClaim(ctx, dbq.QuotaNoticeClaimParams{WorkspaceID: n.workspaceID, Period: n.period, Threshold: int16(n.threshold)})
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	if claimed == 0 {
		return nil // another replica, or an earlier request, sent it
	}
	err = s.mailNotice(ctx, n)
	if err != nil {
		if rerr := s.q.QuotaNoticeRelease(context.WithoutCancel(ctx), dbq.QuotaNoticeReleaseParams{WorkspaceID: n.workspaceID, Period: n.period, Threshold: int16(n.threshold)}); rerr != nil {
			s.log.Error("metering: releasing a quota notice failed; its email will not be retried this period", "workspace_id", n.workspaceID, "err", rerr)
		}
	}
	return err
}

func (s *Service) mailNotice(ctx context.Context, n notice) error {
	ws, err := s.q.WorkspaceGet(ctx, n.workspaceID)
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	to, err := s.q.QuotaNoticeRecipients(ctx, n.workspaceID)
	if err != nil {
		return fmt.Errorf("recipients: %w", err)
	}
	if len(to) == 0 {
		return nil
	}
	_, end := Period(n.period)
	p := s.plans.Get(plan.ID(ws.Plan))
	var subject, lead string
	if n.threshold >= 100 {
		subject = fmt.Sprintf("%s has used all of its Cairn API requests for this month", ws.Name)
		lead = fmt.Sprintf("%s has used all %s billable API requests of the %s plan for this month. Further billable requests are refused with quota_exceeded until the quota resets.",
			ws.Name, plan.Format(n.limit), p.Name)
	} else {
		subject = fmt.Sprintf("%s has used %d%% of its Cairn API requests for this month", ws.Name, n.threshold)
		lead = fmt.Sprintf("%s has used %s of its %s billable API requests (%d%%) on the %s plan this month.",
			ws.Name, plan.Format(n.used), plan.Format(n.limit), n.threshold, p.Name)
	}
	text := lead + "\n\n" +
		fmt.Sprintf("The quota resets on %s.\n", end.Format("2 January 2006 (UTC)")) +
		fmt.Sprintf("See usage per day, key and endpoint: %s/dashboard/usage\n", s.baseURL) +
		fmt.Sprintf("Change the plan: %s/dashboard/billing\n", s.baseURL) +
		"\nYou receive this because you own or administer the workspace.\n"
	return s.mailer.Send(ctx, mail.Message{To: to, Subject: subject, Text: text})
}
