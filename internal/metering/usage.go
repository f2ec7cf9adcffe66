package metering

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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

// dailyKey is one usage_daily row. Method and route stay apart so that building
// the key allocates nothing; the endpoint string is made once per row.
type dailyKey struct {
	workspaceID uuid.UUID
	day         time.Time
	keyID       uuid.UUID
	method      string
	route       string
	status      int16
}

type dailySum struct {
	requests, billable, latency int64
}

// copyUsageEvents is the COPY that writeEvents feeds in PostgreSQL's binary format.
const copyUsageEvents = "COPY usage_events (at, workspace_id, key_id, endpoint, status, latency_us, billable, request_id) FROM STDIN WITH (FORMAT binary)"

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin, in Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

// encodeEvents renders evs as a binary COPY stream for copyUsageEvents. Doing it by
// hand, rather than through pgx's CopyFrom and a []any per row, keeps the cost of
// every API request's event to a few appends into one buffer.
func encodeEvents(b []byte, evs []Event) []byte {
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	field := func(n int) { b = binary.BigEndian.AppendUint32(b, uint32(n)) }
	for i := range evs {
		ev := &evs[i]
		b = binary.BigEndian.AppendUint16(b, 8)
		field(8)
		b = binary.BigEndian.AppendUint64(b, uint64(ev.At.UnixMicro()-pgEpochMicros))
		if ev.WorkspaceID == uuid.Nil {
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // NULL workspace
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF) // NULL key
		} else {
			field(16)
			b = append(b, ev.WorkspaceID[:]...)
			field(16)
			b = append(b, ev.KeyID[:]...)
		}
		field(len(ev.Method) + 1 + len(ev.Route))
		b = append(append(append(b, ev.Method...), ' '), ev.Route...)
		field(2)
		b = binary.BigEndian.AppendUint16(b, uint16(int16(ev.Status)))
		field(4)
		b = binary.BigEndian.AppendUint32(b, uint32(latencyMicros(ev.Latency)))
		field(2)
		if ev.Billable {
			b = binary.BigEndian.AppendUint16(b, 1)
		} else {
			b = binary.BigEndian.AppendUint16(b, 0)
		}
		field(len(ev.RequestID))
		b = append(b, ev.RequestID...)
	}
	return binary.BigEndian.AppendUint16(b, 0xFFFF) // end of data
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
		k := dailyKey{ev.WorkspaceID, time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC), ev.KeyID, ev.Method, ev.Route, int16(ev.Status)}
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
			cmp.Compare(a.method, b.method),
			cmp.Compare(a.route, b.route),
			cmp.Compare(a.status, b.status),
		)
	})
	p := dbq.UsageDailyAddParams{}
	for _, k := range keys {
		d := daily[k]
		p.WorkspaceIds = append(p.WorkspaceIds, k.workspaceID)
		p.Days = append(p.Days, k.day)
		p.KeyIds = append(p.KeyIds, k.keyID)
		p.Endpoints = append(p.Endpoints, k.method+" "+k.route)
		p.Statuses = append(p.Statuses, k.status)
		p.Requests = append(p.Requests, d.requests)
		p.Billables = append(p.Billables, d.billable)
		p.Latencies = append(p.Latencies, d.latency)
	}
	s.copyBuf = encodeEvents(s.copyBuf[:0], evs)
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(s.copyBuf), copyUsageEvents); err != nil {
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
