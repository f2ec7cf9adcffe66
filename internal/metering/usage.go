package metering

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// Event is one /v1 request as recorded for usage analytics. Method and Route are
// kept apart (and joined at flush time) so recording allocates nothing.
type Event struct {
	At          time.Time
	WorkspaceID uuid.UUID // uuid.Nil when the request had no valid key
	KeyID       uuid.UUID
	Method      string
	Route       string // the matched route pattern, e.g. /v1/documents/:id
	Status      int
	Latency     time.Duration
	Billable    bool
	RequestID   string
}

// Billable reports whether a request to route counts against the monthly quota
// (shared/API.md): storing documents, searching and answering.
func Billable(method, route string) bool {
	if method != "POST" {
		return false
	}
	switch route {
	case "/v1/documents", "/v1/search", "/v1/answer":
		return true
	}
	return false
}

// Buffer and batch sizes of the usage recorder.
const (
	usageBuffer   = 16384 // events waiting for the flusher before requests have to wait
	usageBatch    = 4096  // events per COPY
	usageMaxHeld  = 65536 // events held across failed flushes before the buffer backs up
	flushInterval = 500 * time.Millisecond
)

// Record queues ev for the next batch. It does not block while the buffer has room;
// when it is full (the database is slow or down) the request waits for room rather
// than losing the event.
func (s *Service) Record(ev Event) {
	select {
	case s.events <- ev:
	default:
		s.bufferWaits.Inc()
		s.events <- ev
	}
}

// RunFlusher writes recorded events in batches at least every flushInterval until
// ctx ends, then drains the buffer and writes what is left. Failed batches are kept
// and retried; only a database that stays down through shutdown loses events, and
// then it says how many in the log.
func (s *Service) RunFlusher(ctx context.Context) {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	var held []Event
	var failed time.Time // last failed write: full batches wait for the ticker after one
	flush := func(ctx context.Context) {
		done := 0
		for done < len(held) {
			n := min(len(held)-done, usageBatch)
			if err := s.writeEvents(ctx, held[done:done+n]); err != nil {
				s.flushErrors.Inc()
				s.log.Warn("metering: usage flush failed; keeping the events for the next try", "events", len(held)-done, "err", err)
				failed = time.Now()
				break
			}
			done += n
		}
		held = held[:copy(held, held[done:])]
	}
	for {
		// While a backlog is held, stop taking events so that the buffer fills and
		// requests wait instead of the backlog growing without bound.
		in := s.events
		if len(held) >= usageMaxHeld {
			in = nil
		}
		select {
		case ev := <-in:
			held = append(held, ev)
			// Take what else is waiting in one go: one select per burst, not per
			// event. Only this goroutine receives, so these receives never block.
			for n := min(len(s.events), usageMaxHeld-len(held)); n > 0; n-- {
				held = append(held, <-s.events)
			}
			if len(held) >= usageBatch && time.Since(failed) > flushInterval {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			s.drain(&held)
			return
		}
	}
}

// drain takes everything left in the buffer and writes it, retrying for a while
// because this is the last chance.
func (s *Service) drain(held *[]Event) {
	*held = s.takeBuffered(*held)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for len(*held) > 0 {
		n := min(len(*held), usageBatch)
		err := s.writeEvents(ctx, (*held)[:n])
		if err == nil {
			*held = (*held)[n:]
			continue
		}
		if ctx.Err() != nil {
			s.log.Error("metering: usage events lost at shutdown: the database did not take them", "events", len(*held), "err", err)
			return
		}
		s.log.Warn("metering: final usage flush failed; retrying", "events", len(*held), "err", err)
		time.Sleep(500 * time.Millisecond)
	}
}

// Flush writes everything recorded so far; for tests and admin tools that need the
// events in the database now. The flusher must not be running.
func (s *Service) Flush(ctx context.Context) error {
	held := s.takeBuffered(nil)
	for len(held) > 0 {
		n := min(len(held), usageBatch)
		if err := s.writeEvents(ctx, held[:n]); err != nil {
			return err
		}
		held = held[n:]
	}
	return nil
}

// takeBuffered appends every event waiting in the buffer to held.
func (s *Service) takeBuffered(held []Event) []Event {
	for {
		select {
		case ev := <-s.events:
			held = append(held, ev)
		default:
			return held
		}
	}
}

type dailyKey struct {
	workspaceID uuid.UUID
	day         time.Time
	keyID       uuid.UUID
	endpoint    string
	status      int16
}

type dailySum struct {
	requests, billable, latency int64
}

// eventColumns are usage_events' columns in the order eventRows yields them.
var eventColumns = []string{"at", "workspace_id", "key_id", "endpoint", "status", "latency_us", "billable", "request_id"}

// eventRows feeds events to COPY as values pgx encodes natively (pgtype.UUID, not
// *uuid.UUID through driver.Valuer), reusing one row slice: pgx encodes each row
// before asking for the next.
type eventRows struct {
	evs []Event
	i   int
	row [8]any
}

func (r *eventRows) Next() bool { r.i++; return r.i <= len(r.evs) }

func (r *eventRows) Err() error { return nil }

func (r *eventRows) Values() ([]any, error) {
	ev := &r.evs[r.i-1]
	var billable int16
	if ev.Billable {
		billable = 1
	}
	ws, key := pgtype.UUID{Bytes: ev.WorkspaceID, Valid: ev.WorkspaceID != uuid.Nil}, pgtype.UUID{Bytes: ev.KeyID, Valid: ev.WorkspaceID != uuid.Nil}
	r.row = [8]any{ev.At, ws, key, ev.Method + " " + ev.Route, int16(ev.Status), latencyMicros(ev.Latency), billable, ev.RequestID}
	return r.row[:], nil
}

func latencyMicros(d time.Duration) int32 { return int32(min(d.Microseconds(), 1<<31-1)) }

// writeEvents copies evs into usage_events and adds them to usage_daily in one
// transaction, so the roll-up always matches the events.
func (s *Service) writeEvents(ctx context.Context, evs []Event) error {
	daily := map[dailyKey]*dailySum{}
	for i := range evs {
		ev := &evs[i]
		if ev.WorkspaceID == uuid.Nil {
			continue // nobody's usage: kept as an event, not rolled up
		}
		at := ev.At.UTC()
		k := dailyKey{ev.WorkspaceID, time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC), ev.KeyID, ev.Method + " " + ev.Route, int16(ev.Status)}
		d := daily[k]
		if d == nil {
			d = &dailySum{}
			daily[k] = d
		}
		d.requests++
		if ev.Billable {
			d.billable++
		}
		d.latency += int64(latencyMicros(ev.Latency))
	}
	keys := make([]dailyKey, 0, len(daily))
	for k := range daily {
		keys = append(keys, k)
	}
	// One lock order for every replica's batches: no deadlocks between them.
	slices.SortFunc(keys, func(a, b dailyKey) int {
		return cmp.Or(
			slices.Compare(a.workspaceID[:], b.workspaceID[:]),
			a.day.Compare(b.day),
			slices.Compare(a.keyID[:], b.keyID[:]),
			cmp.Compare(a.endpoint, b.endpoint),
			cmp.Compare(a.status, b.status),
		)
	})
	p := dbq.UsageDailyAddParams{}
	for _, k := range keys {
		d := daily[k]
		p.WorkspaceIds = append(p.WorkspaceIds, k.workspaceID)
		p.Days = append(p.Days, k.day)
		p.KeyIds = append(p.KeyIds, k.keyID)
		p.Endpoints = append(p.Endpoints, k.endpoint)
		p.Statuses = append(p.Statuses, k.status)
		p.Requests = append(p.Requests, d.requests)
		p.Billables = append(p.Billables, d.billable)
		p.Latencies = append(p.Latencies, d.latency)
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_events"}, eventColumns, &eventRows{evs: evs}); err != nil {
			return err
		}
		if len(keys) == 0 {
			return nil
		}
		return s.q.WithTx(tx).UsageDailyAdd(ctx, p)
	})
	if err != nil {
		return fmt.Errorf("metering: write %d usage events: %w", len(evs), err)
	}
	s.eventsWritten.Add(float64(len(evs)))
	return nil
}
