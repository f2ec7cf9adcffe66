package metering

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

func TestBillable(t *testing.T) {
	for _, tc := range []struct {
		method, route string
		want          bool
	}{
		{"POST", "/v1/documents", true},
		{"POST", "/v1/search", true},
		{"POST", "/v1/answer", true},
		{"GET", "/v1/documents", false},
		{"GET", "/v1/documents/:id", false},
		{"DELETE", "/v1/documents/:id", false},
		{"GET", "/v1/me", false},
		{"GET", "/v1/usage", false},
		{"POST", "/v1/*", false},
	} {
		if got := Billable(tc.method, tc.route); got != tc.want {
			t.Errorf("Billable(%s %s) = %v, want %v", tc.method, tc.route, got, tc.want)
		}
	}
}

func TestUsageFlusher(t *testing.T) {
	t.Run("ShutdownWritesEveryEvent", func(t *testing.T) {
		pool := newPool(t)
		r := newReplica(t, pool, nil, nil)
		wsA, wsB := newWorkspace(t, pool), newWorkspace(t, pool)
		keyA, keyB := uuid.New(), uuid.New()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.RunFlusher(ctx); close(done) }()
		const writers, each = 8, 2500
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					ev := Event{At: time.Now(), Method: "POST", Route: "/v1/search", Status: 200, Latency: time.Millisecond, Billable: true, RequestID: fmt.Sprint(w, "-", i)}
					ev.WorkspaceID, ev.KeyID = wsA, keyA
					if i%5 == 0 {
						ev.WorkspaceID, ev.KeyID, ev.Method, ev.Route, ev.Status, ev.Billable = wsB, keyB, "GET", "/v1/me", 429, false
					}
					if i%100 == 0 {
						ev.WorkspaceID, ev.KeyID = uuid.Nil, uuid.Nil // unauthenticated
					}
					r.Record(ev)
				}
			}()
		}
		wg.Wait()
		cancel() // as Server.Close does after draining requests
		<-done
		var events, billable, unauth int64
		if err := pool.QueryRow(context.Background(),
			"SELECT count(*), sum(billable), count(*) FILTER (WHERE workspace_id IS NULL) FROM usage_events").Scan(&events, &billable, &unauth); err != nil {
			t.Fatal(err)
		}
		if events != writers*each {
			t.Fatalf("%d events written, want %d", events, writers*each)
		}
		if want := int64(writers * (each - each/5)); billable != want {
			t.Fatalf("billable = %d, want %d", billable, want)
		}
		if want := int64(writers * each / 100); unauth != want {
			t.Fatalf("%d events without a workspace, want %d", unauth, want)
		}
		var daily, dailyBillable int64
		if err := pool.QueryRow(context.Background(), "SELECT sum(requests), sum(billable) FROM usage_daily").Scan(&daily, &dailyBillable); err != nil {
			t.Fatal(err)
		}
		if daily != events-unauth || dailyBillable != billable {
			t.Fatalf("roll-up has %d requests (%d billable), events have %d with a workspace (%d billable)", daily, dailyBillable, events-unauth, billable)
		}
	})

	t.Run("FullBufferMakesTheRequestWait", func(t *testing.T) {
		pool := newPool(t)
		r := newReplica(t, pool, nil, nil)
		ws := newWorkspace(t, pool)
		ev := Event{At: time.Now(), WorkspaceID: ws, KeyID: uuid.New(), Method: "GET", Route: "/v1/me", Status: 200}
		for i := 0; i < cap(r.events); i++ {
			r.Record(ev) // no flusher yet: fills the buffer without blocking
		}
		recorded := make(chan struct{})
		go func() { r.Record(ev); close(recorded) }()
		eventually(t, "the extra event to wait for room", func() bool { return counterValue(r.bufferWaits) == 1 })
		select {
		case <-recorded:
			t.Fatal("Record returned while the buffer was full: the event was dropped")
		default:
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.RunFlusher(ctx); close(done) }()
		<-recorded
		cancel()
		<-done
		var n int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM usage_events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != cap(r.events)+1 {
			t.Fatalf("%d events written, want %d", n, cap(r.events)+1)
		}
	})
}

func TestReport(t *testing.T) {
	pool := newPool(t)
	clk := &clock{t: time.Date(2026, 5, 20, 15, 0, 0, 0, time.UTC)}
	r := newReplica(t, pool, clk.now, nil)
	ws, other := newWorkspace(t, pool), newWorkspace(t, pool)
	var keyID uuid.UUID
	if err := pool.QueryRow(context.Background(),
		"INSERT INTO api_keys (workspace_id, name, prefix, hash) VALUES ($1, '=cmd|calc', 'ck_live_abcd', 'x') RETURNING id", ws).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	day := func(d int) time.Time { return time.Date(2026, 5, d, 10, 0, 0, 0, time.UTC) }
	add := func(ws uuid.UUID, at time.Time, method, route string, status int, n int) {
		for i := 0; i < n; i++ {
			r.Record(Event{At: at, WorkspaceID: ws, KeyID: keyID, Method: method, Route: route, Status: status,
				Latency: 2 * time.Millisecond, Billable: status < 400 && Billable(method, route)})
		}
	}
	add(ws, day(18), "POST", "/v1/search", 200, 3)
	add(ws, day(20), "POST", "/v1/search", 200, 2)
	add(ws, day(20), "GET", "/v1/me", 200, 4)
	add(ws, day(20), "GET", "/v1/me", 429, 1)
	add(ws, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), "GET", "/v1/me", 200, 7) // outside the 30 days
	add(other, day(20), "POST", "/v1/answer", 200, 9)                             // another tenant
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Report(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Days) != ReportDays || !rep.Days[ReportDays-1].Day.Equal(time.Date(2026, 5, 20, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("days: %d, last %v", len(rep.Days), rep.Days[len(rep.Days)-1].Day)
	}
	if d := rep.Days[ReportDays-1]; d.Requests != 7 || d.Billable != 2 {
		t.Errorf("today = %+v, want 7 requests, 2 billable", d)
	}
	if d := rep.Days[ReportDays-3]; d.Requests != 3 || d.Billable != 3 {
		t.Errorf("18 May = %+v, want 3 requests, 3 billable", d)
	}
	if rep.Requests != 10 || rep.Billable != 5 {
		t.Errorf("totals %d/%d, want 10 requests, 5 billable (none from April, none from the other workspace)", rep.Requests, rep.Billable)
	}
	if len(rep.ByKey) != 1 || rep.ByKey[0].Name != "=cmd|calc" || rep.ByKey[0].Requests != 10 {
		t.Errorf("by key = %+v", rep.ByKey)
	}
	if len(rep.ByEndpoint) != 2 || rep.ByEndpoint[0].Endpoint != "GET /v1/me" || rep.ByEndpoint[0].Requests != 5 || rep.ByEndpoint[0].AvgLatency != 2*time.Millisecond {
		t.Errorf("by endpoint = %+v", rep.ByEndpoint)
	}
	if len(rep.ByStatus) != 2 || rep.ByStatus[0] != (StatusCount{200, 9, 5}) || rep.ByStatus[1] != (StatusCount{429, 1, 0}) {
		t.Errorf("by status = %+v", rep.ByStatus)
	}

	t.Run("CSV", func(t *testing.T) {
		var b strings.Builder
		if err := r.WriteCSV(context.Background(), ws, &b); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 5 || lines[0] != "day,key_id,key_name,key_prefix,endpoint,status,requests,billable,avg_latency_ms" {
			t.Fatalf("csv:\n%s", b.String())
		}
		if !strings.Contains(b.String(), "2026-05-18,"+keyID.String()+",'=cmd|calc,ck_live_abcd,POST /v1/search,200,3,3,2.0") {
			t.Fatalf("csv lacks the 18 May row (with the formula-looking name neutralised):\n%s", b.String())
		}
		if strings.Contains(b.String(), "/v1/answer") {
			t.Fatal("csv includes another workspace's usage")
		}
	})

	t.Run("Summary", func(t *testing.T) {
		s, err := r.Summary(context.Background(), ws, "pro")
		if err != nil {
			t.Fatal(err)
		}
		// Pro keeps no quota counter: used comes from the roll-up of this month.
		if s.RequestsUsed != 5 || s.RequestsLimit != -1 || s.Percent() != -1 || s.RatePerMinute != 120 {
			t.Fatalf("summary = %+v", s)
		}
	})
}

// TestEventRoundTrip writes events through the hand-built binary COPY and reads
// every column back.
func TestEventRoundTrip(t *testing.T) {
	pool := newPool(t)
	r := newReplica(t, pool, nil, nil)
	ws, key := newWorkspace(t, pool), uuid.New()
	at := time.Date(2026, 7, 4, 13, 14, 15, 123456789, time.FixedZone("CEST", 2*3600))
	r.Record(Event{At: at, WorkspaceID: ws, KeyID: key, Method: "POST", Route: "/v1/documents/:id", Status: 413,
		Latency: 1234567 * time.Microsecond, Billable: true, RequestID: "req-ü-1"})
	r.Record(Event{At: at, Method: "GET", Route: "/v1/*", Status: 401, Latency: 90 * time.Hour, RequestID: ""})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(context.Background(), "SELECT at, workspace_id, key_id, endpoint, status, latency_us, billable, request_id FROM usage_events ORDER BY status DESC")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var at time.Time
		var w, k *uuid.UUID
		var endpoint, reqID string
		var status, billable int16
		var latency int32
		if err := rows.Scan(&at, &w, &k, &endpoint, &status, &latency, &billable, &reqID); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %v %v %s %d %d %d %q", at.UTC().Format(time.RFC3339Nano), w, k, endpoint, status, latency, billable, reqID))
	}
	want := []string{
		fmt.Sprintf("2026-07-04T11:14:15.123456Z %v %v POST /v1/documents/:id 413 1234567 1 %q", &ws, &key, "req-ü-1"),
		fmt.Sprintf("2026-07-04T11:14:15.123456Z <nil> <nil> GET /v1/* 401 2147483647 0 %q", ""),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// BenchmarkWriteEvents measures one flush of 4,096 events (COPY and roll-up in one
// transaction), reported per event: the database-side price of metering a request.
func BenchmarkWriteEvents(b *testing.B) {
	pool, err := pgxpool.New(context.Background(), dbtest.New(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s := New(Deps{Pool: pool, Log: slog.New(slog.DiscardHandler)})
	evs := make([]Event, 4096)
	ws := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	for i := range evs {
		evs[i] = Event{At: time.Now(), WorkspaceID: ws[i%4], KeyID: ws[i%4], Method: "GET", Route: "/v1/me", Status: 200,
			Latency: time.Millisecond, RequestID: "0123456789abcdef01234567"}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.writeEvents(context.Background(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// TestUsageFlusherOutlivesADatabaseOutage takes PostgreSQL away from a running
// flusher (not at shutdown): the events recorded meanwhile are held and written,
// once each, when it comes back.
func TestUsageFlusherOutlivesADatabaseOutage(t *testing.T) {
	direct := dbtest.New(t)
	proxy := dbtest.NewProxy(t, direct)
	viaProxy, err := pgxpool.New(context.Background(), proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viaProxy.Close)
	check, err := pgxpool.New(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	r := newReplica(t, viaProxy, nil, nil)
	ws := newWorkspace(t, check)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.RunFlusher(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	proxy.Cut()
	const n = 300
	for i := range n {
		r.Record(Event{At: time.Now(), WorkspaceID: ws, KeyID: uuid.New(), Method: "POST", Route: "/v1/search", Status: 200, Billable: true, RequestID: fmt.Sprint("outage-", i)})
	}
	eventually(t, "a flush to fail while the database is down", func() bool { return counterValue(r.flushErrors) >= 1 })
	proxy.Restore()
	count := func() (events, daily int64) {
		if err := check.QueryRow(context.Background(),
			"SELECT (SELECT count(*) FROM usage_events), (SELECT coalesce(sum(requests), 0) FROM usage_daily)").Scan(&events, &daily); err != nil {
			t.Fatal(err)
		}
		return events, daily
	}
	eventually(t, "the held events to be written after the database returned", func() bool { e, _ := count(); return e >= n })
	if events, daily := count(); events != n || daily != n {
		t.Fatalf("%d events and %d rolled-up requests written, want %d of each", events, daily, n)
	}
}

// BenchmarkUsageEventBytes writes 100,000 events of a realistic mix through the
// flusher's COPY and reports PostgreSQL's size per event of usage_events (with its
// BRIN index) and of the usage_daily roll-up: docs/scaling.md's storage model.
//
//	go test -run '^$' -bench UsageEventBytes -benchtime 1x ./internal/metering/
func BenchmarkUsageEventBytes(b *testing.B) {
	pool, err := pgxpool.New(context.Background(), dbtest.New(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s := New(Deps{Pool: pool, Log: slog.New(slog.DiscardHandler)})
	const n = 100_000
	routes := []struct{ method, route string }{{"POST", "/v1/search"}, {"POST", "/v1/search"}, {"GET", "/v1/me"}, {"POST", "/v1/documents"}, {"POST", "/v1/answer"}}
	ws := make([]uuid.UUID, 200)
	for i := range ws {
		ws[i] = uuid.New()
	}
	start := time.Now().Add(-24 * time.Hour)
	written := 0
	for range b.N {
		evs := make([]Event, 0, 4096)
		for i := range n {
			r := routes[i%len(routes)]
			w := ws[(i*7919)%len(ws)]
			evs = append(evs, Event{At: start.Add(time.Duration(i) * time.Second), WorkspaceID: w, KeyID: w, Method: r.method, Route: r.route,
				Status: 200, Latency: time.Duration(1000+i%50000) * time.Microsecond, Billable: r.method == "POST", RequestID: fmt.Sprintf("%024x", i)})
			if len(evs) == cap(evs) || i == n-1 {
				if err := s.writeEvents(context.Background(), evs); err != nil {
					b.Fatal(err)
				}
				written += len(evs)
				evs = evs[:0]
			}
		}
	}
	if _, err := pool.Exec(context.Background(), "VACUUM ANALYZE usage_events, usage_daily"); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"usage_events", "usage_daily"} {
		var size int64
		if err := pool.QueryRow(context.Background(), "SELECT pg_total_relation_size($1::regclass)", table).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/float64(written), table+"-B/event")
	}
}
