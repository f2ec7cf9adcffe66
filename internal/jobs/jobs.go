// Package jobs is Cairn's one durable job queue: River on the same PostgreSQL. Work
// that must not be lost (an email, a re-embedding, a deletion that reaches Pinecone
// or Stripe) is inserted as a job in the same transaction as the change that causes
// it, so it exists exactly when the change commits, runs on any replica, is retried
// with backoff and survives restarts. No goroutine holds such work in memory.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Config tunes a Queue.
type Config struct {
	// Work makes the queue run jobs on this process. Without it the queue only
	// inserts (admin commands, tests of a single service).
	Work bool
	// MaxWorkers bounds the jobs this process runs at once (default 8).
	MaxWorkers int
	// RescueAfter is how long a job may stay running before another replica takes it
	// over as abandoned by a crashed one (default 90 s). Init refuses a value that
	// does not exceed every registered worker's timeout (see AddWorker): a run that
	// is merely slow is cancelled by its own timeout before anyone rescues it, so a
	// rescued job's replica is gone (or frozen past its timeout).
	RescueAfter time.Duration
	// PollOnly fetches by polling instead of LISTEN, for connections through a
	// transaction-pooling PgBouncer.
	PollOnly bool
	// RetryBase is the first retry's delay; each later one doubles, up to RetryMax
	// (defaults 1 s and 10 minutes).
	RetryBase, RetryMax time.Duration
}

const (
	// DefaultTimeout bounds one run of a job whose worker sets no Timeout of its own
	// (River's default, set here so that the rescue check below can see it).
	DefaultTimeout = time.Minute
	// DefaultRescueAfter is Config.RescueAfter's default: comfortably above the
	// longest worker timeout (a minute), so a job a crashed replica held resumes
	// elsewhere within about two minutes (River's rescuer looks every 30 s).
	DefaultRescueAfter = 90 * time.Second
)

// Queue inserts jobs and, when configured to, works them.
type Queue struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	cfg      Config
	workers  *river.Workers
	timeouts map[string]time.Duration
	client   *river.Client[pgx.Tx]
}

// New returns a Queue on pool. Register workers with Workers, then call Init before
// inserting or starting.
func New(pool *pgxpool.Pool, log *slog.Logger, cfg Config) *Queue {
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 8
	}
	if cfg.RescueAfter <= 0 {
		cfg.RescueAfter = DefaultRescueAfter
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Minute
	}
	return &Queue{pool: pool, log: log, cfg: cfg, workers: river.NewWorkers(), timeouts: map[string]time.Duration{}}
}

// AddWorker registers w for its kind of job, before Init; it is the only way to
// add a worker, so that Init sees every worker's timeout. The timeout is read once
// with an empty job: a worker's Timeout must not depend on the job's arguments.
func AddWorker[T river.JobArgs](q *Queue, w river.Worker[T]) {
	var args T
	t := w.Timeout(&river.Job[T]{JobRow: &rivertype.JobRow{}})
	if t == 0 {
		t = DefaultTimeout
	}
	q.timeouts[args.Kind()] = t
	river.AddWorker(q.workers, w)
}

// Timeouts returns every registered kind's timeout (negative: none).
func (q *Queue) Timeouts() map[string]time.Duration { return maps.Clone(q.timeouts) }

// RescueAfter returns how long a running job waits before it is rescued.
func (q *Queue) RescueAfter() time.Duration { return q.cfg.RescueAfter }

// ErrRescueTooSoon is Init's error when RescueAfter does not exceed a worker's
// timeout.
var ErrRescueTooSoon = errors.New("jobs: the rescue delay must exceed the longest job timeout")

// checkRescue returns ErrRescueTooSoon, naming the longest-running kind, unless
// RescueAfter exceeds every registered worker's timeout. River itself never
// rescues a job before its kind's timeout; the check keeps the promise the other
// way round: a run that is still going is not handed to a second replica.
func (q *Queue) checkRescue() error {
	kind, longest := "", DefaultTimeout
	for k, t := range q.timeouts {
		if t < 0 {
			return fmt.Errorf("%w: %s has no timeout, so a crashed replica's run would never be rescued", ErrRescueTooSoon, k)
		}
		if t > longest || t == longest && (kind == "" || k < kind) {
			kind, longest = k, t
		}
	}
	if q.cfg.RescueAfter <= longest {
		if kind == "" {
			kind = "the default"
		}
		return fmt.Errorf("%w: %s is not above %s (%s)", ErrRescueTooSoon, q.cfg.RescueAfter, longest, kind)
	}
	return nil
}

// Init builds the River client once every worker is registered.
func (q *Queue) Init() error {
	if err := q.checkRescue(); err != nil {
		return err
	}
	rc := &river.Config{
		Logger:               q.log.With("component", "river"),
		JobTimeout:           DefaultTimeout,
		RescueStuckJobsAfter: q.cfg.RescueAfter,
		RetryPolicy:          backoff{base: q.cfg.RetryBase, max: q.cfg.RetryMax},
		PollOnly:             q.cfg.PollOnly,
		// Completed jobs are kept a day for inspection, then pruned by River.
		CompletedJobRetentionPeriod: 24 * time.Hour,
	}
	if q.cfg.Work {
		rc.Workers = q.workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: q.cfg.MaxWorkers}}
	} else {
		// An insert-only client may insert kinds this process does not work.
		rc.SkipUnknownJobCheck = true
	}
	c, err := river.NewClient(riverpgxv5.New(q.pool), rc)
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	q.client = c
	return nil
}

// InsertTx adds a job inside tx: it becomes visible to workers when tx commits and
// vanishes if tx rolls back.
func (q *Queue) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobRow, error) {
	if q.client == nil {
		return nil, errors.New("jobs: InsertTx before Init")
	}
	res, err := q.client.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("jobs: insert %s: %w", args.Kind(), err)
	}
	return res.Job, nil
}

// Client returns the River client, for listing jobs (progress pages, tests).
func (q *Queue) Client() *river.Client[pgx.Tx] { return q.client }

// Start works jobs until Stop; a queue without Work does nothing.
func (q *Queue) Start(ctx context.Context) error {
	if !q.cfg.Work || q.client == nil {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop stops fetching and waits for running jobs until ctx ends, then cancels them;
// a cancelled job is retried later by any replica.
func (q *Queue) Stop(ctx context.Context) {
	if !q.cfg.Work || q.client == nil {
		return
	}
	if err := q.client.Stop(ctx); err != nil {
		q.log.Warn("jobs: stopping gracefully timed out; cancelling running jobs", "err", err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = q.client.StopAndCancel(cctx)
	}
}

// backoff retries a failed job after base·2^(attempt-1), at most max, with ±10 %
// jitter so that jobs failing together (SMTP down) do not retry in lockstep.
type backoff struct{ base, max time.Duration }

// NextRetry implements river.ClientRetryPolicy.
func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(b.delay(job.Attempt))
}

func (b backoff) delay(attempt int) time.Duration {
	d := float64(b.base) * math.Pow(2, float64(max(attempt, 1)-1))
	if d > float64(b.max) {
		d = float64(b.max)
	}
	return time.Duration(d * (0.9 + 0.2*rand.Float64()))
}
