package telemetry

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/db"
)

// PgxTracer returns the tracer to set on the pool's ConnConfig: a span per query,
// COPY and connection acquisition when tracing is on (the SQL text, never its
// arguments), and PostgreSQL's last failure for /health/detailed always.
func (t *Telemetry) PgxTracer() pgx.QueryTracer { return pgxTracer{t} }

type pgxTracer struct{ t *Telemetry }

var (
	_ pgx.QueryTracer       = pgxTracer{}
	_ pgx.CopyFromTracer    = pgxTracer{}
	_ pgx.BatchTracer       = pgxTracer{}
	_ pgx.ConnectTracer     = pgxTracer{}
	_ pgxpool.AcquireTracer = pgxTracer{}
)

// start starts a span below the one in ctx. SQL with no span above it (River
// polling its queue, housekeeping) gets none: a root trace a second per replica
// would bury the requests' traces and bill for nothing.
func (p pgxTracer) start(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	if !p.t.Tracing() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	attrs = requestIDAttr(ctx, append(attrs, attribute.String("db.system", "postgresql")))
	ctx, _ = p.t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx
}

func (p pgxTracer) end(ctx context.Context, err error) {
	if err != nil && db.IsUnavailable(err) && !canceled(ctx, err) {
		p.t.Fail(Postgres, err)
	}
	if !p.t.Tracing() {
		return
	}
	span := trace.SpanFromContext(ctx)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		span.SetStatus(codes.Error, errorText(err))
	}
	span.End()
}

// TraceQueryStart names the span after the sqlc query ("-- name: UserGet :one").
func (p pgxTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !p.t.Tracing() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	name := queryName(d.SQL)
	return p.start(ctx, "postgres "+name, attribute.String("db.operation.name", name), attribute.String("db.query.text", d.SQL))
}

// TraceQueryEnd ends the query's span.
func (p pgxTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	p.end(ctx, d.Err)
}

// TraceCopyFromStart starts a COPY's span.
func (p pgxTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return p.start(ctx, "postgres copy "+d.TableName.Sanitize(), attribute.String("db.operation.name", "COPY"))
}

// TraceCopyFromEnd ends the COPY's span.
func (p pgxTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	p.end(ctx, d.Err)
}

// TraceBatchStart starts a batch's span; its queries get spans of their own.
func (p pgxTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return p.start(ctx, "postgres batch")
}

// TraceBatchQuery records nothing: the batch's span covers its queries.
func (p pgxTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd ends the batch's span.
func (p pgxTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	p.end(ctx, d.Err)
}

// TraceConnectStart starts a new connection's span.
func (p pgxTracer) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return p.start(ctx, "postgres connect")
}

// TraceConnectEnd ends it; a connection that cannot be made is PostgreSQL's failure.
func (p pgxTracer) TraceConnectEnd(ctx context.Context, d pgx.TraceConnectEndData) {
	p.end(ctx, d.Err)
}

// TraceAcquireStart starts the span of waiting for a pooled connection.
func (p pgxTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return p.start(ctx, "postgres acquire")
}

// TraceAcquireEnd ends it: when PostgreSQL is down, queries fail here.
func (p pgxTracer) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	p.end(ctx, d.Err)
}

// queryName is the sqlc name of a query, or its first word (SELECT, BEGIN, …).
func queryName(sql string) string {
	s := strings.TrimSpace(sql)
	if rest, ok := strings.CutPrefix(s, "-- name: "); ok {
		if f := strings.Fields(rest); len(f) > 0 {
			return f[0]
		}
	}
	if f := strings.Fields(s); len(f) > 0 {
		return strings.ToUpper(f[0])
	}
	return "query"
}
