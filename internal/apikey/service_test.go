package apikey_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

var seq atomic.Int64

// newWorkspace signs up a user with a verified email and returns their id and workspace.
func newWorkspace(tb testing.TB, pool *pgxpool.Pool) (uuid.UUID, workspace.Workspace) {
	tb.Helper()
	users := auth.NewService(pool)
	u, ws, err := users.SignUp(context.Background(), fmt.Sprintf("owner%d@example.com", seq.Add(1)), "correct horse battery")
	if err != nil {
		tb.Fatalf("sign up: %v", err)
	}
	if err := users.MarkVerified(context.Background(), u.ID); err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return u.ID, ws
}

func newService(pool *pgxpool.Pool) *apikey.Service {
	return apikey.NewService(pool, plan.Default(), slog.New(slog.DiscardHandler))
}

func TestCreateAndVerify(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)

	created, err := keys.Create(ctx, ws.ID, &uid, "  Laptop  ")
	if err != nil {
		t.Fatal(err)
	}
	if !apikey.WellFormed(created.Secret) || created.Name != "Laptop" || created.Prefix != created.Secret[:12] {
		t.Fatalf("Create = %+v", created)
	}
	p, err := keys.Verify(ctx, created.Secret)
	if err != nil {
		t.Fatal(err)
	}
	want := apikey.Principal{KeyID: created.ID, KeyName: "Laptop", KeyPrefix: created.Prefix, Scopes: apikey.AllScopes, WorkspaceID: ws.ID, WorkspaceName: ws.Name, Plan: plan.Free,
		CreatorID: uid, CreatorEmail: p.CreatorEmail, Role: workspace.RoleOwner}
	if p != want || !strings.HasPrefix(p.CreatorEmail, "owner") {
		t.Fatalf("Verify = %+v, want %+v with the creator's email", p, want)
	}

	t.Run("UnknownKey", func(t *testing.T) {
		_, err := keys.Verify(ctx, apikey.Generate())
		if !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("Verify(unknown) = %v, want unauthorized", err)
		}
	})
	t.Run("MalformedKey", func(t *testing.T) {
		_, err := keys.Verify(ctx, created.Secret[:len(created.Secret)-1]+"!")
		if !apperr.Is(err, apperr.Unauthorized) || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("Verify(malformed) = %v, want unauthorized naming the format", err)
		}
	})
	t.Run("RevokedKeyRefusedAtOnceOnThisReplica", func(t *testing.T) {
		if err := keys.Revoke(ctx, ws, created.ID, uid); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(ctx, created.Secret); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("Verify(revoked) = %v, want unauthorized", err)
		}
		if err := keys.Revoke(ctx, ws, created.ID, uid); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("second Revoke = %v, want not_found", err)
		}
	})
}

func TestCreateName(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	for _, tc := range []struct{ name, in string }{
		{"Empty", ""},
		{"Blank", "   "},
		{"TooLong", strings.Repeat("x", 101)},
		{"ControlCharacter", "bad\x00name"},
		{"Newline", "two\nlines"},
		{"InvalidUTF8", "bad\xffname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys.Create(context.Background(), ws.ID, &uid, tc.in)
			if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "name" {
				t.Fatalf("Create(%q) = %v, want invalid_request on name", tc.in, err)
			}
		})
	}
}

func TestCreateEnforcesPlanCap(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)

	// Concurrent creates must not slip past the cap between count and insert.
	var ok atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := keys.Create(ctx, ws.ID, &uid, fmt.Sprintf("key %d", i))
			if err == nil {
				ok.Add(1)
			} else {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if got, want := ok.Load(), int32(2); got != want {
		t.Fatalf("%d of 6 concurrent creates succeeded on Free, want %d", got, want)
	}
	for err := range errs {
		e := apperr.As(err)
		if e == nil || e.Code != apperr.Forbidden || !strings.Contains(e.Message, "Free plan allows 2") || !strings.Contains(e.Message, "Pro (20 keys)") {
			t.Fatalf("over-cap create = %v, want forbidden naming Free's 2 and Pro's 20", err)
		}
	}

	t.Run("RevokingFreesASlot", func(t *testing.T) {
		list, err := keys.List(ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.Revoke(ctx, ws, list[0].ID, uid); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Create(ctx, ws.ID, &uid, "replacement"); err != nil {
			t.Fatalf("create after revoking: %v", err)
		}
	})
	t.Run("UpgradeRaisesCap", func(t *testing.T) {
		if err := workspace.NewService(pool, plan.Default()).SetPlan(ctx, ws.ID, plan.Pro, nil, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Create(ctx, ws.ID, &uid, "third active"); err != nil {
			t.Fatalf("create on Pro: %v", err)
		}
	})
}

func TestRevokeIsTenantScoped(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uidA, wsA := newWorkspace(t, pool)
	uidB, wsB := newWorkspace(t, pool)
	keys := newService(pool)
	keyA, err := keys.Create(ctx, wsA.ID, &uidA, "A's key")
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Revoke(ctx, wsB, keyA.ID, uidB); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("workspace B revoking A's key = %v, want not_found", err)
	}
	if _, err := keys.Verify(ctx, keyA.Secret); err != nil {
		t.Fatalf("A's key stopped working after B's attempt: %v", err)
	}
	listB, err := keys.List(ctx, wsB.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(listB) != 0 {
		t.Fatalf("workspace B lists %d keys, want none of A's", len(listB))
	}
}

// TestRevocationReachesOtherService runs two Services on one database, as two
// replicas would be, and checks that a key verified (and cached) by the second is
// refused by it soon after the first revokes it.
func TestRevocationReachesOtherService(t *testing.T) {
	pool, url := dbtest.NewPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uid, ws := newWorkspace(t, pool)
	a := newService(pool)

	poolB, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer poolB.Close()
	b := newService(poolB)
	l := db.NewListener(poolB, slog.New(slog.DiscardHandler))
	b.Subscribe(l)
	go l.Run(ctx)
	<-l.Ready()

	created, err := a.Create(ctx, ws.ID, &uid, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, created.Secret); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, ws, created.ID, uid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := b.Verify(ctx, created.Secret)
		if apperr.Is(err, apperr.Unauthorized) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica still accepts the revoked key after 2s (last: %v)", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPlanChangeReachesCachedPrincipal(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	l := db.NewListener(pool, slog.New(slog.DiscardHandler))
	keys.Subscribe(l)
	go l.Run(ctx)
	<-l.Ready()
	created, err := keys.Create(ctx, ws.ID, &uid, "k")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := keys.Verify(ctx, created.Secret); err != nil || p.Plan != plan.Free {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	if err := workspace.NewService(pool, plan.Default()).SetPlan(ctx, ws.ID, plan.Enterprise, nil, "test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		p, err := keys.Verify(ctx, created.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if p.Plan == plan.Enterprise {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached principal still on %s 2s after the upgrade", p.Plan)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLastUsedIsFlushedInBatches(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	created, err := keys.Create(ctx, ws.ID, &uid, "k")
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := keys.Verify(ctx, created.Secret); err != nil {
			t.Fatal(err)
		}
	}
	list, err := keys.List(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if list[0].LastUsedAt != nil {
		t.Fatalf("last_used_at written before a flush: verification must not write per request")
	}
	if err := keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	list, err = keys.List(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if list[0].LastUsedAt == nil {
		t.Fatalf("last_used_at still empty after Flush")
	}
}

func TestLastUsedOutlivesADatabaseOutage(t *testing.T) {
	ctx := context.Background()
	direct, url := dbtest.NewPool(t)
	proxy := dbtest.NewProxy(t, url)
	viaProxy, err := pgxpool.New(ctx, proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viaProxy.Close)
	uid, ws := newWorkspace(t, direct)
	keys := newService(viaProxy)
	created, err := keys.Create(ctx, ws.ID, &uid, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, created.Secret); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	if err := keys.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded with the database down")
	}
	proxy.Restore()
	if err := keys.Flush(ctx); err != nil {
		t.Fatalf("Flush after the database returned: %v", err)
	}
	list, err := newService(direct).List(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if list[0].LastUsedAt == nil {
		t.Fatal("the last-used time taken during the outage was lost")
	}
}

// BenchmarkVerify measures key verification on the hot path: Cached is what
// nearly every request pays; Uncached is a replica's first sight of a key (one
// indexed lookup in PostgreSQL).
func BenchmarkVerify(b *testing.B) {
	pool, _ := dbtest.NewPool(b)
	ctx := context.Background()
	uid, ws := newWorkspace(b, pool)
	keys := newService(pool)
	created, err := keys.Create(ctx, ws.ID, &uid, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Cached", func(b *testing.B) {
		if _, err := keys.Verify(ctx, created.Secret); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := keys.Verify(ctx, created.Secret); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			keys.Reset()
			if _, err := keys.Verify(ctx, created.Secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RejectedByChecksum", func(b *testing.B) {
		bad := created.Secret[:len(created.Secret)-1] + "0"
		if bad == created.Secret {
			bad = created.Secret[:len(created.Secret)-1] + "1"
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := keys.Verify(ctx, bad); err == nil {
				b.Fatal("bad checksum accepted")
			}
		}
	})
}

func TestCreateNeedsAVerifiedEmail(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	users := auth.NewService(pool)
	u, ws, err := users.SignUp(ctx, "unverified@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	keys := newService(pool)
	_, err = keys.Create(ctx, ws.ID, &u.ID, "too early")
	if e := apperr.As(err); e == nil || e.Code != apperr.Forbidden || !strings.Contains(e.Message, "Verify your email address") {
		t.Fatalf("Create by an unverified user = %v, want forbidden asking to verify", err)
	}
	if n, _ := keys.List(ctx, ws.ID); len(n) != 0 {
		t.Fatalf("%d keys exist after the refusal", len(n))
	}
	if _, err := keys.Create(ctx, ws.ID, nil, "operator's key"); err != nil {
		t.Fatalf("an operator's key (no creator) = %v", err)
	}
	if err := users.MarkVerified(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Create(ctx, ws.ID, &u.ID, "after verifying"); err != nil {
		t.Fatalf("Create after verifying = %v", err)
	}
}

// TestMembersRevokeOnlyTheirOwnKeys: in a team, a member revokes the keys they
// made and is refused another's; an admin revokes anyone's.
func TestMembersRevokeOnlyTheirOwnKeys(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	owner, ws := newWorkspace(t, pool)
	member, _ := newWorkspace(t, pool)
	admin, _ := newWorkspace(t, pool)
	for id, role := range map[uuid.UUID]string{member: workspace.RoleMember, admin: workspace.RoleAdmin} {
		if _, err := pool.Exec(ctx, `INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, $3)`, ws.ID, id, role); err != nil {
			t.Fatal(err)
		}
	}
	keys := newService(pool)
	ownersKey, err := keys.Create(ctx, ws.ID, &owner, "owner's")
	if err != nil {
		t.Fatal(err)
	}
	membersKey, err := keys.Create(ctx, ws.ID, &member, "member's")
	if err != nil {
		t.Fatal(err)
	}
	asMember := workspace.Workspace{ID: ws.ID, Name: ws.Name, Role: workspace.RoleMember}
	asAdmin := workspace.Workspace{ID: ws.ID, Name: ws.Name, Role: workspace.RoleAdmin}

	t.Run("MemberRefusedAnotherMembersKey", func(t *testing.T) {
		if err := keys.Revoke(ctx, asMember, ownersKey.ID, member); !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("a member revoking the owner's key = %v, want forbidden", err)
		}
		if _, err := keys.Verify(ctx, ownersKey.Secret); err != nil {
			t.Fatalf("the owner's key stopped working: %v", err)
		}
	})
	t.Run("MemberRevokesTheirOwn", func(t *testing.T) {
		if err := keys.Revoke(ctx, asMember, membersKey.ID, member); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(ctx, membersKey.Secret); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("the revoked key: %v", err)
		}
	})
	t.Run("AdminRevokesAnyones", func(t *testing.T) {
		if err := keys.Revoke(ctx, asAdmin, ownersKey.ID, admin); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(ctx, ownersKey.Secret); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("the owner's key after an admin revoked it: %v", err)
		}
	})
}
