// Package workspace manages workspaces (the tenant), memberships and plan changes.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
)

// ChannelChanged is the NOTIFY channel whose payload is the id of a workspace whose
// plan or name changed; caches keyed by workspace drop it.
const ChannelChanged = "cairn_workspace_changed"

// Roles a member can hold, from most to least powerful: owners also hold billing,
// ownership transfer and deletion; admins manage members, invitations, every key and
// read the audit log; members work with documents, search and their own keys;
// viewers read documents and usage and change nothing.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleViewer = "viewer"
)

// Roles lists every role, least powerful first.
var Roles = []string{RoleViewer, RoleMember, RoleAdmin, RoleOwner}

// RoleRank orders roles (viewer 1 … owner 4); anything else ranks 0 and is allowed
// nothing.
func RoleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// Allows reports whether role is at least least.
func Allows(role, least string) bool {
	return RoleRank(role) > 0 && RoleRank(role) >= RoleRank(least)
}

// Article is the indefinite article of a role's name: "an" admin, "a" member.
func Article(role string) string {
	if role == RoleAdmin || role == RoleOwner {
		return "an"
	}
	return "a"
}

// Workspace is a tenant as the dashboard and admin commands see it.
type Workspace struct {
	ID   uuid.UUID
	Name string
	Plan plan.ID
	Role string // the current user's role; empty outside a membership
	// Suspended is set when the current user's membership is suspended because the
	// plan allows fewer members than the workspace has (see SetPlanTx).
	Suspended bool
}

// CanManage reports whether the role may manage members, invitations and every key.
func (w Workspace) CanManage() bool { return Allows(w.Role, RoleAdmin) }

// Allows reports whether the current user's role is at least least.
func (w Workspace) Allows(least string) bool { return Allows(w.Role, least) }

// Service reads and changes workspaces.
type Service struct {
	pool  *pgxpool.Pool
	q     *dbq.Queries
	plans plan.Table
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool, plans plan.Table) *Service {
	return &Service{pool: pool, q: dbq.New(pool), plans: plans}
}

// CreatePersonal creates a user's personal workspace with the user as owner, inside tx.
func CreatePersonal(ctx context.Context, q *dbq.Queries, userID uuid.UUID, email string) (Workspace, error) {
	local, _, _ := strings.Cut(email, "@")
	ws, err := q.WorkspaceCreate(ctx, local+"'s workspace")
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: create: %w", err)
	}
	if err := q.MembershipCreate(ctx, dbq.MembershipCreateParams{WorkspaceID: ws.ID, UserID: userID, Role: RoleOwner}); err != nil {
		return Workspace{}, fmt.Errorf("workspace: create membership: %w", err)
	}
	return Workspace{ID: ws.ID, Name: ws.Name, Plan: plan.ID(ws.Plan), Role: RoleOwner}, nil
}

// ForUser returns the workspace if userID is a member of it, or not_found.
func (s *Service) ForUser(ctx context.Context, userID, workspaceID uuid.UUID) (Workspace, error) {
	row, err := s.q.MembershipGet(ctx, dbq.MembershipGetParams{UserID: userID, WorkspaceID: workspaceID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Workspace{}, apperr.New(apperr.NotFound, "No such workspace.")
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: membership: %w", err)
	}
	return Workspace{ID: row.ID, Name: row.Name, Plan: plan.ID(row.Plan), Role: row.Role, Suspended: row.SuspendedAt != nil}, nil
}

// ListForUser returns the workspaces userID belongs to, oldest membership first.
func (s *Service) ListForUser(ctx context.Context, userID uuid.UUID) ([]Workspace, error) {
	rows, err := s.q.MembershipListForUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("workspace: list: %w", err)
	}
	out := make([]Workspace, len(rows))
	for i, r := range rows {
		out[i] = Workspace{ID: r.ID, Name: r.Name, Plan: plan.ID(r.Plan), Role: r.Role, Suspended: r.SuspendedAt != nil}
	}
	return out, nil
}

// Get returns a workspace by id.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Workspace, error) {
	row, err := s.q.WorkspaceGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Workspace{}, apperr.New(apperr.NotFound, "No such workspace.")
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: get: %w", err)
	}
	return Workspace{ID: row.ID, Name: row.Name, Plan: plan.ID(row.Plan)}, nil
}

// Resolve finds a workspace by id or by its owner's email, for admin commands.
// An owner with several workspaces is ambiguous and gets an error listing them.
func (s *Service) Resolve(ctx context.Context, ref string) (Workspace, error) {
	if id, err := uuid.Parse(ref); err == nil {
		return s.Get(ctx, id)
	}
	rows, err := s.q.WorkspaceFindByOwnerEmail(ctx, ref)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: resolve: %w", err)
	}
	switch len(rows) {
	case 0:
		return Workspace{}, apperr.New(apperr.NotFound, "No workspace with id or owner email %q.", ref)
	case 1:
		return Workspace{ID: rows[0].ID, Name: rows[0].Name, Plan: plan.ID(rows[0].Plan)}, nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID.String()
	}
	return Workspace{}, apperr.New(apperr.Invalid, "%s owns several workspaces; name one by id: %s", ref, strings.Join(ids, ", "))
}

// SetPlan changes a workspace's plan, writes an audit entry and tells every
// replica, all in one transaction. reason says who asked ("admin", "stripe", …).
func (s *Service) SetPlan(ctx context.Context, id uuid.UUID, p plan.ID, actor *uuid.UUID, reason string) error {
	if !s.plans.Valid(p) {
		return apperr.Field("plan", "must be one of free, pro, enterprise")
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		return SetPlanTx(ctx, s.q.WithTx(tx), s.plans, id, p, actor, reason)
	})
}

// SetPlanTx is SetPlan inside a caller's transaction (the billing webhook's). Every
// plan change passes here, so here the workspace's members are suspended when the
// new plan allows fewer than it has, and restored when it allows them all again.
func SetPlanTx(ctx context.Context, q *dbq.Queries, plans plan.Table, id uuid.UUID, p plan.ID, actor *uuid.UUID, reason string) error {
	old, err := q.WorkspaceGetForUpdate(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.New(apperr.NotFound, "No such workspace.")
	}
	if err != nil {
		return fmt.Errorf("workspace: set plan: %w", err)
	}
	if old.Plan == string(p) {
		return nil
	}
	if _, err := q.WorkspaceSetPlan(ctx, dbq.WorkspaceSetPlanParams{ID: id, Plan: string(p)}); err != nil {
		return fmt.Errorf("workspace: set plan: %w", err)
	}
	e := audit.Entry{
		WorkspaceID: id, Action: audit.PlanChanged, TargetKind: "workspace", TargetID: id.String(),
		Detail: map[string]any{"from": old.Plan, "to": string(p), "by": reason},
	}
	switch {
	case reason == "stripe":
		e.Actor = &audit.Actor{Kind: audit.ActorStripe}
	case actor != nil:
		a := audit.ActorFrom(ctx)
		a.Kind, a.UserID = audit.ActorUser, actor
		e.Actor = &a
	}
	if err := audit.Record(ctx, q, e); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	if err := applyMemberLimit(ctx, q, plans.Get(p), id, e.Actor); err != nil {
		return err
	}
	// Key caches drop the workspace's keys on this, so a suspended member's key is
	// refused (and a restored one accepted) on every replica.
	return q.Notify(ctx, dbq.NotifyParams{Channel: ChannelChanged, Payload: id.String()})
}

// applyMemberLimit suspends every member but the owners when the workspace has more
// members than p allows, and restores them all when p allows them. Suspension
// deletes nothing: memberships, keys and invitations stay as they were.
func applyMemberLimit(ctx context.Context, q *dbq.Queries, p plan.Plan, id uuid.UUID, actor *audit.Actor) error {
	n, err := q.MembershipCount(ctx, id)
	if err != nil {
		return fmt.Errorf("workspace: count members: %w", err)
	}
	over := p.Limits.Members != plan.Unlimited && int(n) > p.Limits.Members
	var changed int64
	action := audit.MembersRestored
	if over {
		changed, err = q.MembershipSuspendAllButOwners(ctx, id)
		action = audit.MembersSuspended
	} else {
		changed, err = q.MembershipRestoreAll(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("workspace: %s: %w", action, err)
	}
	if changed == 0 {
		return nil
	}
	return audit.Record(ctx, q, audit.Entry{
		WorkspaceID: id, Actor: actor, Action: action, TargetKind: "workspace", TargetID: id.String(),
		Detail: map[string]any{"members": changed, "plan": string(p.ID), "plan_members": p.Limits.Members},
	})
}

// SuspendedReason says why members of a workspace on plan p are suspended and how
// they come back, for the Team page, the dashboard's refusal and the API's
// plan_limit error.
func SuspendedReason(plans plan.Table, p plan.ID) string {
	cur := plans.Get(p)
	msg := fmt.Sprintf("the %s plan allows %d member", cur.Name, cur.Limits.Members)
	if cur.Limits.Members != 1 {
		msg += "s"
	}
	if next, ok := plans.Next(p, func(l plan.Limits) int64 { return int64(l.Members) }); ok {
		msg += fmt.Sprintf("; the owner can restore every member by upgrading to %s", next.Name)
	}
	return msg
}

// MaxNameLen is the longest workspace name, in characters.
const MaxNameLen = 100

// Rename gives workspace id a new name (field "name": 1–100 printable characters),
// writes an audit entry by actor and tells every replica, whose caches (a key's
// GET /v1/me) drop the old name.
func (s *Service) Rename(ctx context.Context, id uuid.UUID, name string, actor uuid.UUID) (Workspace, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return Workspace{}, apperr.Field("name", "give the workspace a name")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return Workspace{}, apperr.Field("name", "must be printable text")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return Workspace{}, apperr.Field("name", "at most %d characters", MaxNameLen)
	}
	var out Workspace
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		old, err := q.WorkspaceGetForUpdate(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "No such workspace.")
		}
		if err != nil {
			return err
		}
		row, err := q.WorkspaceRename(ctx, dbq.WorkspaceRenameParams{ID: id, Name: name})
		if err != nil {
			return err
		}
		out = Workspace{ID: row.ID, Name: row.Name, Plan: plan.ID(row.Plan)}
		if old.Name == name {
			return nil
		}
		a := audit.ActorFrom(ctx)
		a.Kind, a.UserID = audit.ActorUser, &actor
		// Not the names themselves: a personal workspace is named after its owner's
		// address, which the log must not hold.
		err = audit.Record(ctx, q, audit.Entry{WorkspaceID: id, Actor: &a, Action: audit.SettingsChanged, TargetKind: "workspace",
			TargetID: id.String(), Detail: map[string]any{"setting": "name"}})
		if err != nil {
			return err
		}
		return q.Notify(ctx, dbq.NotifyParams{Channel: ChannelChanged, Payload: id.String()})
	})
	if err != nil && apperr.As(err) == nil {
		return Workspace{}, fmt.Errorf("workspace: rename: %w", err)
	}
	return out, err
}
