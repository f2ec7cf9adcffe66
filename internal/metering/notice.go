package metering

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/db"
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

// tmplQuotaNotice is the quota email. Its job names the workspace, period,
// threshold and counts; recipients and names are read when it is sent.
const tmplQuotaNotice = "metering.quota_notice"

type noticeKey struct {
	workspaceID uuid.UUID
	period      time.Time
	threshold   int
}

// notices remembers which notices this replica knows to be claimed already, so a
// request past a threshold does not ask the database again; the quota_notices row
// is what makes each notice happen once per period across replicas.
type notices struct {
	mu   sync.Mutex
	seen map[noticeKey]bool
}

// dueNotices returns the thresholds used (of limit) reaches that this replica has
// not seen claimed.
func (s *Service) dueNotices(ws uuid.UUID, period time.Time, used, limit int64) []int {
	if s.outbox == nil {
		return nil
	}
	var due []int
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	for _, pct := range Thresholds {
		if used >= ThresholdUnits(limit, pct) && !s.notices.seen[noticeKey{ws, period, pct}] {
			due = append(due, pct)
		}
	}
	return due
}

// queueNotices claims each notice that used (of limit) makes due and queues its
// email, in one transaction: a notice is claimed exactly when its email is queued,
// and a claim another request made already (on any replica) queues nothing. It
// runs after the count committed, and only when this replica has not seen the
// notices claimed, so a request crossing no threshold pays no transaction. It
// reports false when the transaction failed: the notice stays unclaimed, for the
// next request past the threshold (the request itself was counted and goes on).
func (s *Service) queueNotices(ctx context.Context, ws uuid.UUID, period time.Time, used, limit int64) bool {
	due := s.dueNotices(ws, period, used, limit)
	if len(due) == 0 {
		return true
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		for _, pct := range due {
			claimed, err := q.QuotaNoticeClaim(ctx, dbq.QuotaNoticeClaimParams{WorkspaceID: ws, Period: period, Threshold: int16(pct)})
			if err != nil {
				return fmt.Errorf("claim notice: %w", err)
			}
			if claimed == 0 {
				continue
			}
			if err := s.outbox.EnqueueTx(ctx, tx, mail.SendArgs{Template: tmplQuotaNotice, Data: map[string]string{
				"workspace_id": ws.String(), "period": period.Format(time.DateOnly), "threshold": strconv.Itoa(pct),
				"used": strconv.FormatInt(used, 10), "limit": strconv.FormatInt(limit, 10),
			}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("metering: could not queue a quota notice; the next request past the threshold tries again", "workspace_id", ws, "err", err)
		return false
	}
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	for _, pct := range due {
		s.notices.seen[noticeKey{ws, period, pct}] = true
	}
	return true
}

// composeNotice writes the quota email to the workspace's owners and admins as
// they are when it is sent; a workspace deleted meanwhile, or without anyone to
// tell, gets none.
func (s *Service) composeNotice(ctx context.Context, tx pgx.Tx, args mail.SendArgs) (mail.Message, error) {
	ws, err := uuid.Parse(args.Data["workspace_id"])
	if err != nil {
		return mail.Message{}, fmt.Errorf("bad workspace_id: %w", mail.ErrSkip)
	}
	period, perr := time.Parse(time.DateOnly, args.Data["period"])
	threshold, terr := strconv.Atoi(args.Data["threshold"])
	used, uerr := strconv.ParseInt(args.Data["used"], 10, 64)
	limit, lerr := strconv.ParseInt(args.Data["limit"], 10, 64)
	if err := errors.Join(perr, terr, uerr, lerr); err != nil {
		return mail.Message{}, fmt.Errorf("bad notice %v: %w", args.Data, mail.ErrSkip)
	}
	q := s.q.WithTx(tx)
	w, err := q.WorkspaceGet(ctx, ws)
	if errors.Is(err, pgx.ErrNoRows) {
		return mail.Message{}, mail.ErrSkip
	}
	if err != nil {
		return mail.Message{}, fmt.Errorf("workspace: %w", err)
	}
	to, err := q.QuotaNoticeRecipients(ctx, ws)
	if err != nil {
		return mail.Message{}, fmt.Errorf("recipients: %w", err)
	}
	if len(to) == 0 {
		return mail.Message{}, mail.ErrSkip
	}
	_, end := Period(period)
	p := s.plans.Get(plan.ID(w.Plan))
	var subject, lead string
	if threshold >= 100 {
		subject = fmt.Sprintf("%s has used all of its Cairn API requests for this month", w.Name)
		lead = fmt.Sprintf("%s has used all %s billable API requests of the %s plan for this month. Further billable requests are refused with quota_exceeded until the quota resets.",
			w.Name, plan.Format(limit), p.Name)
	} else {
		subject = fmt.Sprintf("%s has used %d%% of its Cairn API requests for this month", w.Name, threshold)
		lead = fmt.Sprintf("%s has used %s of its %s billable API requests (%d%%) on the %s plan this month.",
			w.Name, plan.Format(used), plan.Format(limit), threshold, p.Name)
	}
	text := lead + "\n\n" +
		fmt.Sprintf("The quota resets on %s.\n", end.Format("2 January 2006 (UTC)")) +
		fmt.Sprintf("See usage per day, key and endpoint: %s/dashboard/usage\n", s.baseURL) +
		fmt.Sprintf("Change the plan: %s/dashboard/billing\n", s.baseURL) +
		"\nYou receive this because you own or administer the workspace.\n"
	return mail.Message{To: to, Subject: subject, Text: text}, nil
}
