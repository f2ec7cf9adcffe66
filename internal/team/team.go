// Package team lets several people share a workspace: members and their roles,
// invitations by email, removal (which takes the member's keys with it), leaving
// and ownership transfer. Routes are guarded by the dashboard's access table; the
// rules that depend on who is acted on (nobody removes the owner, the last owner
// cannot leave) live here.
package team

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Member is one person in a workspace as the Team page lists them.
type Member struct {
	UserID     uuid.UUID
	Email      string
	Role       string
	Joined     time.Time
	Suspended  bool
	ActiveKeys int
}

// Service manages a workspace's members and invitations.
type Service struct {
	pool    *pgxpool.Pool
	q       *dbq.Queries
	plans   plan.Table
	outbox  *mail.Outbox
	baseURL string
}

// NewService returns a Service and registers the invitation email's composer with
// outbox.
func NewService(pool *pgxpool.Pool, plans plan.Table, outbox *mail.Outbox, baseURL string) *Service {
	s := &Service{pool: pool, q: dbq.New(pool), plans: plans, outbox: outbox, baseURL: baseURL}
	outbox.Register(TemplateInvitation, s.composeInvitation)
	return s
}

// Members returns the workspace's members, the owner first.
func (s *Service) Members(ctx context.Context, workspaceID uuid.UUID) ([]Member, error) {
	rows, err := s.q.MemberList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("team: members: %w", err)
	}
	out := make([]Member, len(rows))
	for i, r := range rows {
		out[i] = Member{UserID: r.UserID, Email: r.Email, Role: r.Role, Joined: r.CreatedAt, Suspended: r.SuspendedAt != nil, ActiveKeys: int(r.ActiveKeys)}
	}
	return out, nil
}

// Assignable lists the roles a member can be given by invitation or role change;
// owner is reached only by transfer.
var Assignable = []string{workspace.RoleAdmin, workspace.RoleMember, workspace.RoleViewer}

func checkAssignable(role string) error {
	for _, r := range Assignable {
		if r == role {
			return nil
		}
	}
	return apperr.Field("role", "must be admin, member or viewer (the owner's role moves only by transferring ownership)")
}

// ChangeRole gives a member another role. Admins and owners may; nobody changes the
// owner's role except by transferring ownership, so the last owner cannot be
// demoted. Every replica's key cache learns the new role.
func (s *Service) ChangeRole(ctx context.Context, ws workspace.Workspace, userID uuid.UUID, role string) error {
	if !ws.CanManage() {
		return errNeedsAdmin(ws)
	}
	if err := checkAssignable(role); err != nil {
		return err
	}
	return s.tx(ctx, "change role", func(_ pgx.Tx, q *dbq.Queries) error {
		m, err := lockMember(ctx, q, ws.ID, userID)
		if err != nil {
			return err
		}
		if m.Role == workspace.RoleOwner {
			if ws.Role != workspace.RoleOwner {
				return apperr.New(apperr.Forbidden, "Only an owner can change an owner's role; you are %s.", ws.Role)
			}
			if err := ownerStays(ctx, q, ws, m.Email, "demoted"); err != nil {
				return err
			}
		}
		if m.Role == role {
			return nil
		}
		if err := q.MemberSetRole(ctx, dbq.MemberSetRoleParams{WorkspaceID: ws.ID, UserID: userID, Role: role}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.MemberRoleChanged, TargetKind: "user", TargetID: userID.String(),
			Detail: map[string]any{"from": m.Role, "to": role},
		}); err != nil {
			return err
		}
		return notifyChanged(ctx, q, ws.ID)
	})
}

// Remove takes a member out of the workspace and revokes every key they made
// there, in one transaction; every replica refuses those keys once it commits, and
// the member's session is refused on its next request. Admins and owners may
// remove anyone but the owner and themselves (they leave instead). It returns the
// keys revoked.
func (s *Service) Remove(ctx context.Context, ws workspace.Workspace, actorID, userID uuid.UUID) ([]apikey.Key, error) {
	if !ws.CanManage() {
		return nil, errNeedsAdmin(ws)
	}
	if actorID == userID {
		return nil, apperr.New(apperr.Invalid, "You cannot remove yourself; use Leave workspace instead.")
	}
	var keys []apikey.Key
	err := s.tx(ctx, "remove member", func(_ pgx.Tx, q *dbq.Queries) error {
		m, err := lockMember(ctx, q, ws.ID, userID)
		if err != nil {
			return err
		}
		if m.Role == workspace.RoleOwner {
			return apperr.New(apperr.Forbidden, "%s owns %s and cannot be removed; ownership moves only when the owner transfers it.", m.Email, ws.Name)
		}
		if keys, err = depart(ctx, q, ws.ID, userID); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.MemberRemoved, TargetKind: "user", TargetID: userID.String(),
			Detail: map[string]any{"role": m.Role, "keys_revoked": len(keys)},
		})
	})
	return keys, err
}

// Leave takes userID out of the workspace, revoking the keys they made there. Any
// member but the last owner may leave; the owner transfers ownership first.
func (s *Service) Leave(ctx context.Context, ws workspace.Workspace, userID uuid.UUID) error {
	return s.tx(ctx, "leave", func(_ pgx.Tx, q *dbq.Queries) error {
		m, err := lockMember(ctx, q, ws.ID, userID)
		if err != nil {
			return err
		}
		if m.Role == workspace.RoleOwner {
			if err := ownerStays(ctx, q, ws, "you", "leave"); err != nil {
				return err
			}
		}
		// Everyone keeps a workspace to open; an account with none is deleted instead.
		if n, err := q.MemberWorkspaceCount(ctx, userID); err != nil {
			return err
		} else if n <= 1 {
			return apperr.New(apperr.Conflict, "%s is your only workspace, so you cannot leave it; to go entirely, delete your account under Settings.", ws.Name)
		}
		keys, err := depart(ctx, q, ws.ID, userID)
		if err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.MemberLeft, TargetKind: "user", TargetID: userID.String(),
			Detail: map[string]any{"role": m.Role, "keys_revoked": len(keys)},
		})
	})
}

// Transfer makes another member the owner; the old owner becomes an admin. Only
// the owner may, and not to a suspended member (who could not open the workspace).
func (s *Service) Transfer(ctx context.Context, ws workspace.Workspace, fromID, toID uuid.UUID) error {
	if ws.Role != workspace.RoleOwner {
		return apperr.New(apperr.Forbidden, "Only the owner of %s can transfer its ownership; you are %s.", ws.Name, ws.Role)
	}
	if fromID == toID {
		return apperr.Field("user_id", "choose another member; you already own %s", ws.Name)
	}
	return s.tx(ctx, "transfer ownership", func(_ pgx.Tx, q *dbq.Queries) error {
		from, err := lockMember(ctx, q, ws.ID, fromID)
		if err != nil {
			return err
		}
		if from.Role != workspace.RoleOwner {
			return apperr.New(apperr.Forbidden, "Only the owner of %s can transfer its ownership.", ws.Name)
		}
		to, err := lockMember(ctx, q, ws.ID, toID)
		if err != nil {
			return err
		}
		if to.SuspendedAt != nil {
			return apperr.New(apperr.Conflict, "%s is suspended (%s) and cannot take ownership until the plan allows every member again.",
				to.Email, workspace.SuspendedReason(s.plans, ws.Plan))
		}
		if err := q.MemberSetRole(ctx, dbq.MemberSetRoleParams{WorkspaceID: ws.ID, UserID: toID, Role: workspace.RoleOwner}); err != nil {
			return err
		}
		if err := q.MemberSetRole(ctx, dbq.MemberSetRoleParams{WorkspaceID: ws.ID, UserID: fromID, Role: workspace.RoleAdmin}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.OwnershipTransferred, TargetKind: "user", TargetID: toID.String(),
			Detail: map[string]any{"from": fromID.String(), "to": toID.String(), "to_previous_role": to.Role},
		}); err != nil {
			return err
		}
		return notifyChanged(ctx, q, ws.ID)
	})
}

// tx runs fn in a transaction (fn locks the workspace row first, so changes to
// its members, invitations and plan happen one at a time). Errors that are not the
// caller's are wrapped with what was being done.
func (s *Service) tx(ctx context.Context, what string, fn func(tx pgx.Tx, q *dbq.Queries) error) error {
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		return fn(tx, s.q.WithTx(tx))
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("team: %s: %w", what, err)
	}
	return err
}

// lockMember locks and returns a membership; the workspace row is locked first so
// that concurrent changes to the workspace's members serialise.
func lockMember(ctx context.Context, q *dbq.Queries, workspaceID, userID uuid.UUID) (dbq.MemberGetForUpdateRow, error) {
	if _, err := q.WorkspaceGetForUpdate(ctx, workspaceID); err != nil {
		return dbq.MemberGetForUpdateRow{}, err
	}
	m, err := q.MemberGetForUpdate(ctx, dbq.MemberGetForUpdateParams{WorkspaceID: workspaceID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return m, apperr.New(apperr.NotFound, "No member with that id in this workspace.")
	}
	return m, err
}

// ownerStays refuses to leave a workspace without an owner: who (an email or
// "you") cannot do what (leave, be demoted) while they are its only owner.
func ownerStays(ctx context.Context, q *dbq.Queries, ws workspace.Workspace, who, what string) error {
	n, err := q.MemberOwnerCount(ctx, ws.ID)
	if err != nil {
		return err
	}
	if n > 1 {
		return nil
	}
	if who == "you" {
		return apperr.New(apperr.Conflict, "You are the only owner of %s and cannot %s; transfer ownership to another member first.", ws.Name, what)
	}
	return apperr.New(apperr.Conflict, "%s is the only owner of %s and cannot be %s; the owner can transfer ownership to another member.", who, ws.Name, what)
}

// depart revokes the keys userID made in the workspace and deletes the membership.
func depart(ctx context.Context, q *dbq.Queries, workspaceID, userID uuid.UUID) ([]apikey.Key, error) {
	keys, err := apikey.RevokeByCreatorTx(ctx, q, workspaceID, userID)
	if err != nil {
		return nil, err
	}
	if _, err := q.MemberDelete(ctx, dbq.MemberDeleteParams{WorkspaceID: workspaceID, UserID: userID}); err != nil {
		return nil, err
	}
	return keys, notifyChanged(ctx, q, workspaceID)
}

// notifyChanged tells every replica that the workspace's members changed, so key
// caches re-read the roles their keys act with.
func notifyChanged(ctx context.Context, q *dbq.Queries, workspaceID uuid.UUID) error {
	return q.Notify(ctx, dbq.NotifyParams{Channel: workspace.ChannelChanged, Payload: workspaceID.String()})
}

func errNeedsAdmin(ws workspace.Workspace) error {
	return apperr.New(apperr.Forbidden, "Managing the members of %s needs the admin role (or a higher one); you are %s.", ws.Name, ws.Role)
}
