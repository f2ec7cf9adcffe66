package apikey_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

// clock is a settable time for expiry and grace tests.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Now())
	return c
}
func (c *clock) now() time.Time          { return *c.t.Load() }
func (c *clock) set(t time.Time)         { c.t.Store(&t) }
func (c *clock) advance(d time.Duration) { c.set(c.now().Add(d)) }

func TestScopesAreStoredAndVerified(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	created, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "reader", Scopes: apikey.DocumentsRead | apikey.Search})
	if err != nil {
		t.Fatal(err)
	}
	p, err := keys.Verify(ctx, created.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Scopes != apikey.DocumentsRead|apikey.Search {
		t.Fatalf("scopes = %v", p.Scopes)
	}
	list, err := keys.List(ctx, ws.ID)
	if err != nil || len(list) != 1 || list[0].Scopes != p.Scopes || list[0].ExpiresAt != nil || list[0].Kind != apikey.KindManual {
		t.Fatalf("List = %+v, %v", list, err)
	}
	t.Run("KeysFromBeforeScopesHaveThemAll", func(t *testing.T) {
		// The migration's default: an insert that names no scopes, as every
		// key made before scopes existed was.
		var id string
		hash := apikey.Hash("old")
		if err := pool.QueryRow(ctx, `INSERT INTO api_keys (workspace_id, name, prefix, hash) VALUES ($1, 'old', 'ck_live_old0', $2) RETURNING id`,
			ws.ID, hash[:]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		var scopes []string
		if err := pool.QueryRow(ctx, `SELECT scopes FROM api_keys WHERE id = $1`, id).Scan(&scopes); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(scopes, " "), apikey.AllScopes.String(); got != want {
			t.Fatalf("scopes of an old key = %q, want %q", got, want)
		}
	})
}

func TestExpiry(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	clk := newClock()
	keys.SetClock(clk.now)

	created, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "week", ExpiresIn: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if created.ExpiresAt == nil || created.ExpiresAt.Sub(clk.now()) < 7*24*time.Hour-time.Minute {
		t.Fatalf("ExpiresAt = %v", created.ExpiresAt)
	}
	if _, err := keys.Verify(ctx, created.Secret); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	// The cached entry must not outlive the expiry.
	clk.set(*created.ExpiresAt)
	_, err = keys.Verify(ctx, created.Secret)
	if !apperr.Is(err, apperr.Unauthorized) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Verify at expiry = %v; want unauthorized saying it expired", err)
	}
	t.Run("ExpiredKeysStopCountingAgainstTheCap", func(t *testing.T) {
		// Free allows 2 keys: the expired one leaves room for two more.
		for _, name := range []string{"a", "b"} {
			if _, err := keys.Create(ctx, ws.ID, &uid, name); err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
		}
	})
	t.Run("NegativeLifetimeRefused", func(t *testing.T) {
		_, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "x", ExpiresIn: -time.Hour})
		if e := apperr.As(err); e == nil || e.Field != "expires_in_days" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDeviceKeysRenewOnUse(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	clk := newClock()
	keys.SetClock(clk.now)

	created, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "Chrome on Linux", Kind: apikey.KindDevice, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first := *created.ExpiresAt
	if d := first.Sub(clk.now()); d < apikey.DeviceKeyLifetime-time.Minute || d > apikey.DeviceKeyLifetime {
		t.Fatalf("a device key lives %v, want %v whatever the spec says", d, apikey.DeviceKeyLifetime)
	}
	// Used 80 days later: the expiry moves to 90 days after that use.
	clk.advance(80 * 24 * time.Hour)
	if _, err := keys.VerifyFrom(ctx, created.Secret, apikey.Client{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux) Chrome/130"}); err != nil {
		t.Fatal(err)
	}
	if err := keys.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := keys.List(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	k := list[0]
	if k.ExpiresAt == nil || !k.ExpiresAt.After(first.Add(79*24*time.Hour)) {
		t.Fatalf("expiry after use = %v, want about %v", k.ExpiresAt, clk.now().Add(apikey.DeviceKeyLifetime))
	}
	if k.LastIP != "203.0.113.7" || !strings.Contains(k.LastUserAgent, "Chrome/130") || k.Kind != apikey.KindDevice {
		t.Fatalf("last seen = %q %q, kind %q", k.LastIP, k.LastUserAgent, k.Kind)
	}
	// Past the first expiry, the cached entry is looked up again and the renewal wins.
	clk.set(first.Add(time.Hour))
	if _, err := keys.Verify(ctx, created.Secret); err != nil {
		t.Fatalf("renewed device key refused after its first expiry: %v", err)
	}
	t.Run("AManualKeyIsNotRenewed", func(t *testing.T) {
		m, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "script", ExpiresIn: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		clk.advance(12 * time.Hour)
		if _, err := keys.Verify(ctx, m.Secret); err != nil {
			t.Fatal(err)
		}
		if err := keys.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		clk.advance(13 * time.Hour)
		if _, err := keys.Verify(ctx, m.Secret); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("manual key past its expiry after use: %v", err)
		}
	})
}

func TestRoll(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	uid, ws := newWorkspace(t, pool)
	keys := newService(pool)
	clk := newClock()
	keys.SetClock(clk.now)

	created, err := keys.CreateWith(ctx, ws.ID, &uid, apikey.Spec{Name: "laptop", Scopes: apikey.Search})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, created.Secret); err != nil { // cached before the roll
		t.Fatal(err)
	}
	rolled, err := keys.Roll(ctx, ws, created.ID, uid, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rolled.Secret == created.Secret || rolled.ID != created.ID || rolled.Prefix == created.Prefix || rolled.Scopes != apikey.Search {
		t.Fatalf("Roll = %+v", rolled)
	}
	for name, secret := range map[string]string{"OldSecretDuringGrace": created.Secret, "NewSecret": rolled.Secret} {
		p, err := keys.Verify(ctx, secret)
		if err != nil || p.KeyID != created.ID || p.Scopes != apikey.Search {
			t.Fatalf("%s: Verify = %+v, %v", name, p, err)
		}
	}
	list, err := keys.List(ctx, ws.ID)
	if err != nil || len(list[0].Previous) != 1 || list[0].Previous[0].Prefix != created.Prefix {
		t.Fatalf("List shows previous secrets %+v, %v", list[0].Previous, err)
	}
	var audited int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'api_key.rolled' AND target_id = $1`, created.ID.String()).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("audit entries for the roll: %d, %v", audited, err)
	}

	clk.advance(2 * time.Hour)
	if _, err := keys.Verify(ctx, created.Secret); !apperr.Is(err, apperr.Unauthorized) {
		t.Fatalf("old secret after the grace: %v; want unauthorized", err)
	}
	if _, err := keys.Verify(ctx, rolled.Secret); err != nil {
		t.Fatalf("new secret after the grace: %v", err)
	}

	t.Run("NoGraceRefusesTheOldSecretAtOnce", func(t *testing.T) {
		again, err := keys.Roll(ctx, ws, created.ID, uid, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(ctx, rolled.Secret); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("old secret after a roll without grace: %v", err)
		}
		rolled = again
	})
	t.Run("RevokingEndsThePreviousSecretToo", func(t *testing.T) {
		again, err := keys.Roll(ctx, ws, created.ID, uid, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Verify(ctx, rolled.Secret); err != nil {
			t.Fatal(err)
		}
		if err := keys.Revoke(ctx, ws, created.ID, uid); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{rolled.Secret, again.Secret} {
			if _, err := keys.Verify(ctx, s); !apperr.Is(err, apperr.Unauthorized) {
				t.Fatalf("secret of a revoked key: %v", err)
			}
		}
		if _, err := keys.Roll(ctx, ws, created.ID, uid, 0); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("roll of a revoked key: %v", err)
		}
	})
	t.Run("GraceOutOfRange", func(t *testing.T) {
		k, err := keys.Create(ctx, ws.ID, &uid, "other")
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []time.Duration{-time.Second, 25 * time.Hour} {
			if _, err := keys.Roll(ctx, ws, k.ID, uid, g); apperr.As(err) == nil || apperr.As(err).Field != "grace_hours" {
				t.Fatalf("grace %v: %v", g, err)
			}
		}
	})
	t.Run("AnotherWorkspacesKey", func(t *testing.T) {
		uidB, wsB := newWorkspace(t, pool)
		k, err := keys.Create(ctx, wsB.ID, &uidB, "B's")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Roll(ctx, ws, k.ID, uid, time.Hour); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("roll of another workspace's key: %v", err)
		}
		if _, err := keys.Verify(ctx, k.Secret); err != nil {
			t.Fatalf("B's key after A tried to roll it: %v", err)
		}
	})
}
