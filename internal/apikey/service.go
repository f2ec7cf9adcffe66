package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// ChannelRevoked is the NOTIFY channel for revocations; its payload is the key's id
// (older replicas sent the hex SHA-256 of one secret, which is still understood).
const ChannelRevoked = "cairn_key_revoked"

// Principal is who an API request acts as: a key, what it may call (its scopes),
// its workspace and the member who made it, whose role the key carries. It is
// comparable, so callers may key caches on it: any change to what it says makes a
// different value.
type Principal struct {
	KeyID         uuid.UUID
	KeyName       string
	KeyPrefix     string
	Scopes        Scopes
	WorkspaceID   uuid.UUID
	WorkspaceName string
	Plan          plan.ID
	// CreatorID and CreatorEmail name the member who made the key; both are zero
	// for a key made by an operator (cairn admin create-key), which acts for the
	// workspace with the owner's role.
	CreatorID    uuid.UUID
	CreatorEmail string
	// Role is the creator's role in the workspace.
	Role string
}

// Kind says how a key was made.
type Kind string

// Key kinds: by a person on the keys page (or the admin command), or by a device
// sign-in (renewed on use).
const (
	KindManual Kind = "manual"
	KindDevice Kind = "device"
)

// DeviceKeyLifetime is how long a device key lives unused: each use moves its
// expiry to this long after that use.
const DeviceKeyLifetime = 90 * 24 * time.Hour

// MaxGrace is the longest a rolled key's previous secret keeps working.
const MaxGrace = 24 * time.Hour

// Key is an API key as listed in the dashboard; the key itself is never kept.
type Key struct {
	ID         uuid.UUID
	Name       string
	Prefix     string
	Kind       Kind
	Scopes     Scopes
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	// ExpiresAt is nil for a key that never expires.
	ExpiresAt *time.Time
	// LastIP and LastUserAgent are where the key was last used from ("" if never).
	LastIP        string
	LastUserAgent string
	// Previous are the secrets a roll replaced that still work, newest grace first.
	Previous []PreviousSecret
	// CreatedBy is the member who made the key (uuid.Nil: an operator);
	// CreatorEmail is their address while their account exists.
	CreatedBy    uuid.UUID
	CreatorEmail string
}

// Expired reports whether the key has passed its expiry at now.
func (k Key) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// PreviousSecret is a rolled key's old secret during its grace.
type PreviousSecret struct {
	Prefix     string
	ValidUntil time.Time
}

// Spec is what a new key is made with.
type Spec struct {
	Name string
	// Scopes limits what the key may call; zero means every scope.
	Scopes Scopes
	// ExpiresIn is the key's lifetime; zero means it never expires (device keys
	// always get DeviceKeyLifetime).
	ExpiresIn time.Duration
	Kind      Kind
	// Detail adds facts to the audit entry of the creation (a device sign-in's id).
	Detail map[string]any
}

// Client is where a request with a key comes from, shown on the keys page.
type Client struct {
	IP        string
	UserAgent string
}

// Created is a newly minted key; Secret is shown once and then forgotten.
type Created struct {
	Key
	Secret string
}

// Service manages API keys and verifies them on the hot path from an in-process cache
// kept fresh through PostgreSQL LISTEN/NOTIFY.
type Service struct {
	pool  *pgxpool.Pool
	q     *dbq.Queries
	plans plan.Table
	log   *slog.Logger

	cache sync.Map // [32]byte -> cached
	// gen counts invalidations, so a lookup that raced with one does not cache a stale entry.
	gen atomic.Uint64

	mu      sync.Mutex
	touched map[uuid.UUID]use

	now func() time.Time
}

// cached is a verified secret: the principal, or the refusal of a key whose
// creator is suspended (kept so a suspended key's every call does not reach the
// database either). until, when set, is when it stops being valid by itself (the
// key's expiry, or the end of a rolled secret's grace): every replica then looks
// it up again, with no notification needed.
type cached struct {
	p       Principal
	refusal error
	until   time.Time
}

// use is a key's latest use, waiting for the next flush.
type use struct {
	at time.Time
	Client
}

// NewService returns a Service; call Subscribe to keep its cache in step with other replicas.
func NewService(pool *pgxpool.Pool, plans plan.Table, log *slog.Logger) *Service {
	return &Service{pool: pool, q: dbq.New(pool), plans: plans, log: log, touched: map[uuid.UUID]use{}, now: time.Now}
}

// SetClock replaces the clock that expiries and graces are measured by, for tests.
func (s *Service) SetClock(now func() time.Time) {
	s.now = now
	s.Reset()
}

// Subscribe registers the cache's invalidations with l. A revocation's payload is
// the key's id (every secret of it goes) or, from older replicas, the hex SHA-256
// of one secret.
func (s *Service) Subscribe(l *db.Listener) {
	l.Subscribe(ChannelRevoked, func(payload string) {
		if id, err := uuid.Parse(payload); err == nil {
			s.forgetKey(id)
			return
		}
		b, err := hex.DecodeString(payload)
		if err != nil || len(b) != 32 {
			return
		}
		s.gen.Add(1)
		s.cache.Delete([32]byte(b))
	}, s.Reset)
	l.Subscribe(workspace.ChannelChanged, func(payload string) {
		id, err := uuid.Parse(payload)
		if err != nil {
			return
		}
		s.forget(func(p Principal) bool { return p.WorkspaceID == id })
	}, nil)
}

// forgetKey drops every cached secret of key id.
func (s *Service) forgetKey(id uuid.UUID) {
	s.forget(func(p Principal) bool { return p.KeyID == id })
}

// forget drops the cached principals that match.
func (s *Service) forget(match func(Principal) bool) {
	s.gen.Add(1)
	s.cache.Range(func(k, v any) bool {
		if match(v.(cached).p) {
			s.cache.Delete(k)
		}
		return true
	})
}

// Reset empties the cache.
func (s *Service) Reset() {
	s.gen.Add(1)
	s.cache.Clear()
}

// ValidateName checks a key's name and returns it trimmed.
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", apperr.Field("name", "give the key a name, such as the browser it is for")
	case utf8.RuneCountInString(name) > 100:
		return "", apperr.Field("name", "at most 100 characters")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", apperr.Field("name", "must be printable text")
	}
	return name, nil
}

// Create mints a key with every scope and no expiry; see CreateWith.
func (s *Service) Create(ctx context.Context, workspaceID uuid.UUID, createdBy *uuid.UUID, name string) (Created, error) {
	return s.CreateWith(ctx, workspaceID, createdBy, Spec{Name: name})
}

// CreateWith mints a key for the workspace as spec says. It returns a forbidden
// error when the workspace's plan allows no more active keys, or when createdBy
// (nil for admin commands) has not verified their email address.
func (s *Service) CreateWith(ctx context.Context, workspaceID uuid.UUID, createdBy *uuid.UUID, spec Spec) (Created, error) {
	var created Created
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		created, err = s.CreateTx(ctx, tx, workspaceID, createdBy, spec)
		return err
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Created{}, err
		}
		return Created{}, fmt.Errorf("apikey: create: %w", err)
	}
	return created, nil
}

// CreateTx is CreateWith inside the caller's transaction, for changes that mint a
// key together with something else (a device sign-in marks its code used).
func (s *Service) CreateTx(ctx context.Context, tx pgx.Tx, workspaceID uuid.UUID, createdBy *uuid.UUID, spec Spec) (Created, error) {
	name, err := ValidateName(spec.Name)
	if err != nil {
		return Created{}, err
	}
	scopes := spec.Scopes
	if scopes == 0 {
		scopes = AllScopes
	}
	kind := spec.Kind
	if kind == "" {
		kind = KindManual
	}
	lifetime := spec.ExpiresIn
	if kind == KindDevice {
		lifetime = DeviceKeyLifetime
	}
	if lifetime < 0 {
		return Created{}, apperr.Field("expires_in_days", "must be positive")
	}
	var expires *time.Time
	if lifetime > 0 {
		t := s.now().Add(lifetime).UTC()
		expires = &t
	}
	secret := Generate()
	hash := Hash(secret)
	q := s.q.WithTx(tx)
	if createdBy != nil {
		if err := auth.RequireVerifiedTx(ctx, q, *createdBy); err != nil {
			return Created{}, err
		}
	}
	if err := s.CheckCap(ctx, q, workspaceID); err != nil {
		return Created{}, err
	}
	row, err := q.APIKeyCreate(ctx, dbq.APIKeyCreateParams{
		WorkspaceID: workspaceID, CreatedBy: createdBy, Name: name, Prefix: Display(secret), Hash: hash[:],
		Scopes: scopes.Names(), ExpiresAt: expires, Kind: string(kind),
	})
	if err != nil {
		return Created{}, err
	}
	detail := map[string]any{"prefix": row.Prefix, "name": row.Name, "scopes": scopes.Names(), "kind": string(kind)}
	if expires != nil {
		detail["expires_at"] = expires.Format(time.RFC3339)
	}
	for k, v := range spec.Detail {
		detail[k] = v
	}
	if err := audit.Record(ctx, q, audit.Entry{
		WorkspaceID: workspaceID, Action: audit.KeyCreated, TargetKind: "api_key", TargetID: row.ID.String(), Detail: detail,
	}); err != nil {
		return Created{}, err
	}
	return Created{Key: toKey(row), Secret: secret}, nil
}

// CheckCap returns a forbidden error when the workspace's plan allows no more
// active keys. Through a transaction's q it locks the workspace's row, which
// serialises concurrent creates against the cap.
func (s *Service) CheckCap(ctx context.Context, q *dbq.Queries, workspaceID uuid.UUID) error {
	ws, err := q.WorkspaceGetForUpdate(ctx, workspaceID)
	if err != nil {
		return err
	}
	p := s.plans.Get(plan.ID(ws.Plan))
	n, err := q.APIKeyCountActive(ctx, dbq.APIKeyCountActiveParams{WorkspaceID: workspaceID, Now: s.now()})
	if err != nil {
		return err
	}
	if p.Limits.APIKeys != plan.Unlimited && int(n) >= p.Limits.APIKeys {
		return CapError(s.plans, p.ID, int(n))
	}
	return nil
}

// CapError explains that plan p allows no more than its active keys. After a
// downgrade a workspace can hold more than that; the message then says its keys
// keep working and how many to revoke before a new one can be made.
func CapError(plans plan.Table, p plan.ID, active int) error {
	cur := plans.Get(p)
	msg := fmt.Sprintf("The %s plan allows %d active API keys and this workspace has %d. Revoke a key", cur.Name, cur.Limits.APIKeys, active)
	if over := active - cur.Limits.APIKeys + 1; over > 1 {
		msg = fmt.Sprintf("The %s plan allows %d active API keys and this workspace has %d from a bigger plan. They all keep working; to create a new one, revoke %d",
			cur.Name, cur.Limits.APIKeys, active, over)
	}
	if next, ok := plans.Next(p, func(l plan.Limits) int64 { return int64(l.APIKeys) }); ok {
		msg += fmt.Sprintf(" or upgrade to %s (%s keys)", next.Name, plan.Format(int64(next.Limits.APIKeys)))
	}
	return apperr.New(apperr.Forbidden, "%s.", msg)
}

// List returns the workspace's keys, active ones first, newest first.
func (s *Service) List(ctx context.Context, workspaceID uuid.UUID) ([]Key, error) {
	rows, err := s.q.APIKeyList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	prev, err := s.q.APIKeyRolledActive(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("apikey: list previous secrets: %w", err)
	}
	byKey := map[uuid.UUID][]PreviousSecret{}
	for _, r := range prev {
		byKey[r.KeyID] = append(byKey[r.KeyID], PreviousSecret{Prefix: r.Prefix, ValidUntil: r.ValidUntil})
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = toKey(dbq.ApiKey{
			ID: r.ID, WorkspaceID: r.WorkspaceID, CreatedBy: r.CreatedBy, Name: r.Name, Prefix: r.Prefix,
			CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt,
			Scopes: r.Scopes, ExpiresAt: r.ExpiresAt, Kind: r.Kind, LastIp: r.LastIp, LastUserAgent: r.LastUserAgent,
		})
		if r.CreatorEmail != nil {
			keys[i].CreatorEmail = *r.CreatorEmail
		}
		if r.RevokedAt == nil {
			keys[i].Previous = byKey[r.ID]
		}
	}
	return keys, nil
}

// mayChange refuses a member who is not an admin or the owner a key someone else made.
func mayChange(ws workspace.Workspace, key dbq.ApiKey, userID uuid.UUID, what string) error {
	if !ws.CanManage() && (key.CreatedBy == nil || *key.CreatedBy != userID) {
		return apperr.New(apperr.Forbidden, "Only an admin or the owner can %s a key someone else made; you are %s.", what, ws.Role)
	}
	return nil
}

// Revoke revokes the workspace's key id on behalf of userID, whose role in the
// workspace is ws.Role: admins and owners revoke any key, others only the keys
// they made (forbidden otherwise). Every replica refuses the key, and its previous
// secrets still in their grace, once the transaction's NOTIFY arrives. It returns
// not_found for another workspace's key or one already revoked.
func (s *Service) Revoke(ctx context.Context, ws workspace.Workspace, id, userID uuid.UUID) error {
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		key, err := q.APIKeyGet(ctx, dbq.APIKeyGetParams{WorkspaceID: ws.ID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && key.RevokedAt != nil) {
			return apperr.New(apperr.NotFound, "No active key with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		if err := mayChange(ws, key, userID, "revoke"); err != nil {
			return err
		}
		row, err := q.APIKeyRevoke(ctx, dbq.APIKeyRevokeParams{WorkspaceID: ws.ID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "No active key with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		return revoked(ctx, q, row)
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	if err == nil {
		// This replica drops it at once rather than waiting for its own notification.
		s.forgetKey(id)
	}
	return err
}

// RevokeByCreatorTx revokes every active key userID made in the workspace, inside
// the caller's transaction (a member leaving or being removed), with an audit
// entry each. Every replica, this one included, drops them from its cache when the
// transaction's NOTIFYs arrive at commit. It returns the keys revoked.
func RevokeByCreatorTx(ctx context.Context, q *dbq.Queries, workspaceID, userID uuid.UUID) ([]Key, error) {
	rows, err := q.APIKeyRevokeByCreator(ctx, dbq.APIKeyRevokeByCreatorParams{WorkspaceID: workspaceID, CreatedBy: &userID})
	if err != nil {
		return nil, fmt.Errorf("apikey: revoke by creator: %w", err)
	}
	keys := make([]Key, len(rows))
	for i, row := range rows {
		if err := revoked(ctx, q, row); err != nil {
			return nil, err
		}
		keys[i] = toKey(row)
	}
	return keys, nil
}

// revoked tells every replica that row's key is revoked (by id: its previous
// secrets go with it) and records it.
func revoked(ctx context.Context, q *dbq.Queries, row dbq.ApiKey) error {
	if err := q.Notify(ctx, dbq.NotifyParams{Channel: ChannelRevoked, Payload: row.ID.String()}); err != nil {
		return fmt.Errorf("apikey: notify revocation: %w", err)
	}
	return audit.Record(ctx, q, audit.Entry{
		WorkspaceID: row.WorkspaceID, Action: audit.KeyRevoked, TargetKind: "api_key", TargetID: row.ID.String(),
		Detail: map[string]any{"prefix": row.Prefix, "name": row.Name},
	})
}

// Roll gives the workspace's key id a new secret, shown once, and keeps the old
// one working for grace (0 to MaxGrace), after which every replica refuses it:
// each caches a secret only until its grace ends. As with Revoke, admins and
// owners roll any key and others only their own (forbidden). It returns not_found
// for another workspace's key or a revoked one, and invalid_request for an
// expired key or a grace out of range.
func (s *Service) Roll(ctx context.Context, ws workspace.Workspace, id, userID uuid.UUID, grace time.Duration) (Created, error) {
	workspaceID := ws.ID
	if grace < 0 || grace > MaxGrace {
		return Created{}, apperr.Field("grace_hours", "must be from 0 to %d hours", int(MaxGrace.Hours()))
	}
	secret := Generate()
	hash := Hash(secret)
	var row dbq.ApiKey
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		old, err := q.APIKeyGetActiveForUpdate(ctx, dbq.APIKeyGetActiveForUpdateParams{WorkspaceID: workspaceID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "No active key with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		if err := mayChange(ws, old, userID, "roll"); err != nil {
			return err
		}
		now := s.now()
		if k := toKey(old); k.Expired(now) {
			return apperr.New(apperr.Invalid, "The key “%s” has expired; create a new key instead of rolling it.", k.Name)
		}
		if grace > 0 {
			if err := q.APIKeyRolledInsert(ctx, dbq.APIKeyRolledInsertParams{
				Hash: old.Hash, KeyID: old.ID, Prefix: old.Prefix, ValidUntil: now.Add(grace),
			}); err != nil {
				return err
			}
		}
		row, err = q.APIKeySetSecret(ctx, dbq.APIKeySetSecretParams{Hash: hash[:], Prefix: Display(secret), WorkspaceID: workspaceID, ID: id})
		if err != nil {
			return err
		}
		// Replicas drop what they cached for the key; the old secret's next lookup
		// finds its grace (or, with none, nothing).
		if err := q.Notify(ctx, dbq.NotifyParams{Channel: ChannelRevoked, Payload: row.ID.String()}); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: workspaceID, Action: audit.KeyRolled, TargetKind: "api_key", TargetID: row.ID.String(),
			Detail: map[string]any{"name": row.Name, "old_prefix": old.Prefix, "prefix": row.Prefix, "grace_seconds": int(grace.Seconds())},
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Created{}, err
		}
		return Created{}, fmt.Errorf("apikey: roll: %w", err)
	}
	s.forgetKey(id)
	return Created{Key: toKey(row), Secret: secret}, nil
}

// PruneRolled deletes previous secrets whose grace ended over a day ago; they
// already match nothing.
func (s *Service) PruneRolled(ctx context.Context) error {
	if _, err := s.q.APIKeyRolledPrune(ctx); err != nil {
		return fmt.Errorf("apikey: prune rolled secrets: %w", err)
	}
	return nil
}

// Verify is VerifyFrom without knowing where the request came from.
func (s *Service) Verify(ctx context.Context, key string) (Principal, error) {
	return s.VerifyFrom(ctx, key, Client{})
}

// VerifyFrom returns the principal for key and notes that it was used from client:
// unauthorized when the key is malformed, fails its checksum, is unknown, revoked
// or expired, is a rolled key's previous secret past its grace, or its creator is
// no longer a member; plan_limit when its creator is suspended after a downgrade;
// unavailable when the database cannot be reached. Verified keys are served from
// memory until their expiry or grace ends.
func (s *Service) VerifyFrom(ctx context.Context, key string, client Client) (Principal, error) {
	if !WellFormed(key) {
		return Principal{}, apperr.New(apperr.Unauthorized, "The API key is malformed; keys look like ck_live_ followed by 38 letters and digits.")
	}
	hash := Hash(key)
	now := s.now()
	if v, ok := s.cache.Load(hash); ok {
		c := v.(cached)
		if c.until.IsZero() || now.Before(c.until) {
			if c.refusal != nil {
				return Principal{}, c.refusal
			}
			s.touch(c.p.KeyID, now, client)
			return c.p, nil
		}
		// Past its deadline: a device key may have been renewed since, so ask again.
		s.cache.CompareAndDelete(hash, v)
	}
	gen := s.gen.Load()
	row, err := s.q.APIKeyVerify(ctx, hash[:])
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && row.CreatedBy != nil && row.CreatorRole == nil) {
		return Principal{}, apperr.New(apperr.Unauthorized, "The API key is unknown or has been revoked.")
	}
	if err != nil {
		return Principal{}, apperr.Unavailablef(fmt.Errorf("apikey: verify: %w", err), 5, "The service is temporarily unavailable; retry shortly.")
	}
	c := cached{p: Principal{
		KeyID: row.ID, KeyName: row.Name, KeyPrefix: row.Prefix, Scopes: scopesFromDB(row.Scopes),
		WorkspaceID: row.WorkspaceID, WorkspaceName: row.WorkspaceName, Plan: plan.ID(row.Plan),
		Role: workspace.RoleOwner,
	}}
	if row.CreatedBy != nil {
		c.p.CreatorID, c.p.Role = *row.CreatedBy, *row.CreatorRole
		if row.CreatorEmail != nil {
			c.p.CreatorEmail = *row.CreatorEmail
		}
	}
	if row.ExpiresAt != nil {
		if !now.Before(*row.ExpiresAt) {
			return Principal{}, apperr.New(apperr.Unauthorized, "The API key expired on %s; create a new one or sign in again.", row.ExpiresAt.UTC().Format("2 January 2006 15:04 UTC"))
		}
		c.until = *row.ExpiresAt
	}
	if row.SecretUntil != nil {
		if !now.Before(*row.SecretUntil) {
			return Principal{}, apperr.New(apperr.Unauthorized, "The API key is unknown or has been revoked.")
		}
		if c.until.IsZero() || row.SecretUntil.Before(c.until) {
			c.until = *row.SecretUntil
		}
	}
	if row.CreatorSuspendedAt != nil {
		c.refusal = apperr.New(apperr.PlanLimit, "The member who created this key is suspended in %s: %s.",
			row.WorkspaceName, workspace.SuspendedReason(s.plans, c.p.Plan))
	}
	if s.gen.Load() == gen {
		s.cache.Store(hash, c)
	}
	if c.refusal != nil {
		return Principal{}, c.refusal
	}
	s.touch(c.p.KeyID, now, client)
	return c.p, nil
}

func (s *Service) touch(id uuid.UUID, now time.Time, client Client) {
	s.mu.Lock()
	// One entry per key per flush: the map keeps the write count independent of traffic.
	prev, ok := s.touched[id]
	if !ok || prev.at.Before(now) {
		if client.IP == "" && client.UserAgent == "" {
			client = prev.Client
		}
		s.touched[id] = use{at: now, Client: client}
	}
	s.mu.Unlock()
}

// RunFlusher writes last-used times in one batch every interval until ctx ends, then
// once more.
func (s *Service) RunFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.log.Error("apikey: final last-used flush failed", "err", err)
			}
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.log.Warn("apikey: last-used flush failed; will retry", "err", err)
			}
		}
	}
}

// Flush writes pending last-used times; on failure they are kept for the next try.
func (s *Service) Flush(ctx context.Context) error {
	s.mu.Lock()
	pending := s.touched
	s.touched = map[uuid.UUID]use{}
	s.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	p := dbq.APIKeyTouchParams{RenewSeconds: int64(DeviceKeyLifetime.Seconds())}
	for id, u := range pending {
		p.Ids = append(p.Ids, id)
		p.UsedAt = append(p.UsedAt, u.at)
		p.Ips = append(p.Ips, audit.Clean(u.IP, 64))
		p.UserAgents = append(p.UserAgents, audit.Clean(u.UserAgent, 512))
	}
	if err := s.q.APIKeyTouch(ctx, p); err != nil {
		s.mu.Lock()
		for id, u := range pending {
			if cur, ok := s.touched[id]; !ok || cur.at.Before(u.at) {
				s.touched[id] = u
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("apikey: flush last used: %w", err)
	}
	return nil
}

func toKey(r dbq.ApiKey) Key {
	k := Key{
		ID: r.ID, Name: r.Name, Prefix: r.Prefix, Kind: Kind(r.Kind), Scopes: scopesFromDB(r.Scopes),
		CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt, ExpiresAt: r.ExpiresAt,
		LastIP: r.LastIp, LastUserAgent: r.LastUserAgent,
	}
	if r.CreatedBy != nil {
		k.CreatedBy = *r.CreatedBy
	}
	return k
}
