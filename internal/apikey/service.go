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

// ChannelRevoked is the NOTIFY channel for revocations; its payload is the hex SHA-256 of a key.
const ChannelRevoked = "cairn_key_revoked"

// Principal is who an API request acts as: a key, its workspace and the member who
// made it, whose role the key carries. It is comparable, so callers may key caches
// on it: any change to what it says makes a different value.
type Principal struct {
	KeyID         uuid.UUID
	KeyName       string
	KeyPrefix     string
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

// Key is an API key as listed in the dashboard; the key itself is never kept.
type Key struct {
	ID         uuid.UUID
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	// CreatedBy is the member who made the key (uuid.Nil: an operator);
	// CreatorEmail is their address while their account exists.
	CreatedBy    uuid.UUID
	CreatorEmail string
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
	touched map[uuid.UUID]time.Time
}

// NewService returns a Service; call Subscribe to keep its cache in step with other replicas.
func NewService(pool *pgxpool.Pool, plans plan.Table, log *slog.Logger) *Service {
	return &Service{pool: pool, q: dbq.New(pool), plans: plans, log: log, touched: map[uuid.UUID]time.Time{}}
}

// Subscribe registers the cache's invalidations with l.
func (s *Service) Subscribe(l *db.Listener) {
	l.Subscribe(ChannelRevoked, func(payload string) {
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
		s.gen.Add(1)
		s.cache.Range(func(k, v any) bool {
			if v.(cached).p.WorkspaceID == id {
				s.cache.Delete(k)
			}
			return true
		})
	}, nil)
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

// Create mints a key for the workspace. It returns a forbidden error when the
// workspace's plan allows no more active keys, or when createdBy (nil for admin
// commands) has not verified their email address.
func (s *Service) Create(ctx context.Context, workspaceID uuid.UUID, createdBy *uuid.UUID, name string) (Created, error) {
	name, err := ValidateName(name)
	if err != nil {
		return Created{}, err
	}
	secret := Generate()
	hash := Hash(secret)
	var row dbq.ApiKey
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if createdBy != nil {
			if err := auth.RequireVerifiedTx(ctx, q, *createdBy); err != nil {
				return err
			}
		}
		ws, err := q.WorkspaceGetForUpdate(ctx, workspaceID) // serialises concurrent creates against the cap
		if err != nil {
			return err
		}
		p := s.plans.Get(plan.ID(ws.Plan))
		n, err := q.APIKeyCountActive(ctx, workspaceID)
		if err != nil {
			return err
		}
		if p.Limits.APIKeys != plan.Unlimited && int(n) >= p.Limits.APIKeys {
			return CapError(s.plans, p.ID, int(n))
		}
		row, err = q.APIKeyCreate(ctx, dbq.APIKeyCreateParams{
			WorkspaceID: workspaceID, CreatedBy: createdBy, Name: name, Prefix: Display(secret), Hash: hash[:],
		})
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: workspaceID, Action: audit.KeyCreated, TargetKind: "api_key", TargetID: row.ID.String(),
			Detail: map[string]any{"prefix": row.Prefix, "name": row.Name},
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Created{}, err
		}
		return Created{}, fmt.Errorf("apikey: create: %w", err)
	}
	return Created{Key: toKey(row), Secret: secret}, nil
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
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = toKey(dbq.ApiKey{
			ID: r.ID, WorkspaceID: r.WorkspaceID, CreatedBy: r.CreatedBy, Name: r.Name, Prefix: r.Prefix,
			CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt,
		})
		if r.CreatorEmail != nil {
			keys[i].CreatorEmail = *r.CreatorEmail
		}
	}
	return keys, nil
}

// ListActiveByCreator returns the active keys userID made in the workspace: what
// removing them would revoke.
func (s *Service) ListActiveByCreator(ctx context.Context, workspaceID, userID uuid.UUID) ([]Key, error) {
	rows, err := s.q.APIKeyListActiveByCreator(ctx, dbq.APIKeyListActiveByCreatorParams{WorkspaceID: workspaceID, CreatedBy: &userID})
	if err != nil {
		return nil, fmt.Errorf("apikey: list by creator: %w", err)
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = toKey(r)
	}
	return keys, nil
}

// Revoke revokes the workspace's key id on behalf of userID, whose role in the
// workspace is ws.Role: admins and owners revoke any key, others only the keys
// they made (forbidden otherwise). Every replica refuses the key once the
// transaction's NOTIFY arrives. It returns not_found for another workspace's key
// or one already revoked.
func (s *Service) Revoke(ctx context.Context, ws workspace.Workspace, id, userID uuid.UUID) error {
	var hash []byte
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		key, err := q.APIKeyGet(ctx, dbq.APIKeyGetParams{WorkspaceID: ws.ID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && key.RevokedAt != nil) {
			return apperr.New(apperr.NotFound, "No active key with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		if !ws.CanManage() && (key.CreatedBy == nil || *key.CreatedBy != userID) {
			return apperr.New(apperr.Forbidden, "Only an admin or the owner can revoke a key someone else made; you are %s.", ws.Role)
		}
		row, err := q.APIKeyRevoke(ctx, dbq.APIKeyRevokeParams{WorkspaceID: ws.ID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "No active key with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		hash = row.Hash
		return revoked(ctx, q, row)
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("apikey: revoke: %w", err)
	}
	if err == nil {
		// This replica drops it at once rather than waiting for its own notification.
		s.gen.Add(1)
		s.cache.Delete([32]byte(hash))
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

// revoked tells every replica that row's key is revoked and records it.
func revoked(ctx context.Context, q *dbq.Queries, row dbq.ApiKey) error {
	if err := q.Notify(ctx, dbq.NotifyParams{Channel: ChannelRevoked, Payload: hex.EncodeToString(row.Hash)}); err != nil {
		return fmt.Errorf("apikey: notify revocation: %w", err)
	}
	return audit.Record(ctx, q, audit.Entry{
		WorkspaceID: row.WorkspaceID, Action: audit.KeyRevoked, TargetKind: "api_key", TargetID: row.ID.String(),
		Detail: map[string]any{"prefix": row.Prefix, "name": row.Name},
	})
}

// cached is what the verification cache holds per key hash: the principal, or the
// refusal of a key whose creator is suspended (kept so a suspended key's every
// call does not reach the database either).
type cached struct {
	p       Principal
	refusal error
}

// Verify returns the principal for key: unauthorized when it is malformed, fails its
// checksum, is unknown or revoked, or its creator is no longer a member; plan_limit
// when its creator is suspended after a downgrade; unavailable when the database
// cannot be reached. Verified keys are served from memory.
func (s *Service) Verify(ctx context.Context, key string) (Principal, error) {
	if !WellFormed(key) {
		return Principal{}, apperr.New(apperr.Unauthorized, "The API key is malformed; keys look like ck_live_ followed by 38 letters and digits.")
	}
	hash := Hash(key)
	if v, ok := s.cache.Load(hash); ok {
		c := v.(cached)
		if c.refusal != nil {
			return Principal{}, c.refusal
		}
		s.touch(c.p.KeyID)
		return c.p, nil
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
		KeyID: row.ID, KeyName: row.Name, KeyPrefix: row.Prefix,
		WorkspaceID: row.WorkspaceID, WorkspaceName: row.WorkspaceName, Plan: plan.ID(row.Plan),
		Role: workspace.RoleOwner,
	}}
	if row.CreatedBy != nil {
		c.p.CreatorID, c.p.Role = *row.CreatedBy, *row.CreatorRole
		if row.CreatorEmail != nil {
			c.p.CreatorEmail = *row.CreatorEmail
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
	s.touch(c.p.KeyID)
	return c.p, nil
}

func (s *Service) touch(id uuid.UUID) {
	now := time.Now()
	s.mu.Lock()
	// One timestamp per key per flush: the map keeps the write count independent of traffic.
	s.touched[id] = now
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
	s.touched = map[uuid.UUID]time.Time{}
	s.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, 0, len(pending))
	times := make([]time.Time, 0, len(pending))
	for id, t := range pending {
		ids = append(ids, id)
		times = append(times, t)
	}
	if err := s.q.APIKeyTouch(ctx, dbq.APIKeyTouchParams{Ids: ids, UsedAt: times}); err != nil {
		s.mu.Lock()
		for id, t := range pending {
			if cur, ok := s.touched[id]; !ok || cur.Before(t) {
				s.touched[id] = t
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("apikey: flush last used: %w", err)
	}
	return nil
}

func toKey(r dbq.ApiKey) Key {
	k := Key{ID: r.ID, Name: r.Name, Prefix: r.Prefix, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
	if r.CreatedBy != nil {
		k.CreatedBy = *r.CreatedBy
	}
	return k
}
