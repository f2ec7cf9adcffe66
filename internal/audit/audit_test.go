package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

func TestRecord(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	q := dbq.New(pool)
	ws, user := uuid.New(), uuid.New()

	t.Run("ActorFromTheContext", func(t *testing.T) {
		ctx := audit.WithActor(context.Background(), audit.User(user, "203.0.113.9", "Firefox\x00"))
		if err := audit.Record(ctx, q, audit.Entry{WorkspaceID: ws, Action: audit.KeyCreated, TargetKind: "api_key", TargetID: "k1", Detail: map[string]any{"prefix": "ck_live_abcd"}}); err != nil {
			t.Fatal(err)
		}
		var kind, ip, ua, prefix string
		var actor *uuid.UUID
		err := pool.QueryRow(context.Background(), `SELECT actor_kind, actor_user_id, ip, user_agent, detail->>'prefix' FROM audit_log WHERE target_id = 'k1'`).Scan(&kind, &actor, &ip, &ua, &prefix)
		if err != nil {
			t.Fatal(err)
		}
		if kind != "user" || actor == nil || *actor != user || ip != "203.0.113.9" || ua != "Firefox" || prefix != "ck_live_abcd" {
			t.Fatalf("row: %q %v %q %q %q", kind, actor, ip, ua, prefix)
		}
	})
	t.Run("SystemWithoutAnActor", func(t *testing.T) {
		if err := audit.Record(context.Background(), q, audit.Entry{Action: audit.LoginFailed, TargetID: "k2"}); err != nil {
			t.Fatal(err)
		}
		var kind string
		var wsID *uuid.UUID
		if err := pool.QueryRow(context.Background(), `SELECT actor_kind, workspace_id FROM audit_log WHERE target_id = 'k2'`).Scan(&kind, &wsID); err != nil {
			t.Fatal(err)
		}
		if kind != "system" || wsID != nil {
			t.Fatalf("kind %q workspace %v, want system and none", kind, wsID)
		}
	})
	t.Run("ExplicitActorWins", func(t *testing.T) {
		ctx := audit.WithActor(context.Background(), audit.User(user, "", ""))
		if err := audit.Record(ctx, q, audit.Entry{WorkspaceID: ws, Actor: &audit.Actor{Kind: audit.ActorStripe}, Action: audit.PlanChanged, TargetID: "k3"}); err != nil {
			t.Fatal(err)
		}
		var kind string
		if err := pool.QueryRow(context.Background(), `SELECT actor_kind FROM audit_log WHERE target_id = 'k3'`).Scan(&kind); err != nil || kind != "stripe" {
			t.Fatalf("kind %q (%v), want stripe", kind, err)
		}
	})
}

// TestAuditLogIsAppendOnly proves the trigger: no SQL can change or remove a row.
func TestAuditLogIsAppendOnly(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	if err := audit.Record(ctx, dbq.New(pool), audit.Entry{WorkspaceID: uuid.New(), Action: audit.MemberJoined, TargetID: "kept"}); err != nil {
		t.Fatal(err)
	}
	for name, sql := range map[string]string{
		"Update":   `UPDATE audit_log SET action = 'rewritten'`,
		"Delete":   `DELETE FROM audit_log`,
		"Truncate": `TRUNCATE audit_log`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pool.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
				t.Fatalf("%s: err = %v, want the append-only refusal", sql, err)
			}
		})
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE target_id = 'kept' AND action = 'member.joined'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("row count %d (%v), want the row unchanged", n, err)
	}
}
