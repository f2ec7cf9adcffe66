package auth

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

func TestSessionIndex(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	s := NewService(pool)
	ctx := context.Background()
	u, _, err := s.SignUp(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.SignUp(ctx, "bob@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	// Three sessions of ada, one of bob, each with its row in scs's own table.
	var ids []uuid.UUID
	for i, owner := range []uuid.UUID{u.ID, u.ID, u.ID, other.ID} {
		token := uuid.NewString()
		if _, err := pool.Exec(ctx, "INSERT INTO sessions (token, data, expiry) VALUES ($1, 'x', now() + interval '1 day')", token); err != nil {
			t.Fatal(err)
		}
		id, err := s.SessionStart(ctx, owner, token, "Firefox\xff\x00", "192.0.2.1")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	alive := func(user, id uuid.UUID) bool {
		t.Helper()
		ok, err := s.SessionAlive(ctx, user, id, "192.0.2.9")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	scsRows := func() int {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if !alive(u.ID, ids[0]) || alive(other.ID, ids[0]) || alive(u.ID, uuid.Nil) {
		t.Fatal("a session is alive only for its own user")
	}
	if err := s.SessionEnd(ctx, other.ID, ids[1]); err == nil || !alive(u.ID, ids[1]) {
		t.Fatalf("another user ended ada's session: %v", err)
	}
	if err := s.SessionEnd(ctx, u.ID, ids[1]); err != nil || alive(u.ID, ids[1]) || scsRows() != 3 {
		t.Fatalf("SessionEnd = %v; alive %v; %d scs rows, want 3", err, alive(u.ID, ids[1]), scsRows())
	}
	if err := s.SessionEndOthers(ctx, u.ID, ids[0]); err != nil || !alive(u.ID, ids[0]) || alive(u.ID, ids[2]) || !alive(other.ID, ids[3]) || scsRows() != 2 {
		t.Fatalf("SessionEndOthers = %v: want ada's current and bob's left, in both tables (%d scs rows)", err, scsRows())
	}
	list, err := s.Sessions(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].ID != ids[0] || list[0].IP != "192.0.2.9" || list[0].UserAgent != "Firefox\uFFFD" {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
}

// BenchmarkSessionAlive is what every signed-in dashboard request adds to see that
// its session was not ended: one primary-key read (the last-seen write happens at
// most once a minute).
func BenchmarkSessionAlive(b *testing.B) {
	pool, _ := dbtest.NewPool(b)
	s := NewService(pool)
	ctx := context.Background()
	u, _, err := s.SignUp(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	id, err := s.SessionStart(ctx, u.ID, "token", "Firefox", "192.0.2.1")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := s.SessionAlive(ctx, u.ID, id, "192.0.2.1"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// TestAccountEventsReachEveryWorkspaceLog: a password change and ended sessions of
// an account are written to the audit log of every workspace it belongs to (its
// own and a team's), and a failed log-in on no account outside any workspace.
func TestAccountEventsReachEveryWorkspaceLog(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	s := NewService(pool)
	ctx := context.Background()
	ada, own, err := s.SignUp(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	_, team, err := s.SignUp(ctx, "bob@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'member')", team.ID, ada.ID); err != nil {
		t.Fatal(err)
	}
	start := func() uuid.UUID {
		t.Helper()
		id, err := s.SessionStart(ctx, ada.ID, uuid.NewString(), "Firefox", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	current := start()
	start()
	if err := s.ChangePassword(ctx, ada.ID, current, "192.0.2.1", "correct horse battery", "a brand new passphrase 42"); err != nil {
		t.Fatal(err)
	}
	start()
	start()
	if err := s.SessionEndOthers(ctx, ada.ID, current); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, Attempt{Email: "nobody@example.com", Password: "wrong guess", IP: "192.0.2.7"}); err == nil {
		t.Fatal("a log-in on no account succeeded")
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_log WHERE "+query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, ws := range []uuid.UUID{own.ID, team.ID} {
		if n := count("workspace_id = $1 AND action = 'user.password_changed' AND actor_user_id = $2 AND target_id = $3", ws, ada.ID, ada.ID.String()); n != 1 {
			t.Errorf("workspace %s: %d password_changed entries, want 1", ws, n)
		}
		if n := count("workspace_id = $1 AND action = 'user.session_ended' AND (detail->>'sessions')::int = 2", ws); n != 1 {
			t.Errorf("workspace %s: %d session_ended entries for 2 sessions, want 1", ws, n)
		}
	}
	if n := count("workspace_id IS NULL AND action = 'user.login_failed' AND detail->>'account' = 'unknown' AND actor_user_id IS NULL"); n != 1 {
		t.Errorf("%d login_failed entries outside any workspace for an unknown account, want 1", n)
	}
}
