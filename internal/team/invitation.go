package team

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/onetime"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// InvitationTTL is how long an invitation's link works after it was (last) sent.
const InvitationTTL = 7 * 24 * time.Hour

// TemplateInvitation is the outbox template of the invitation email.
const TemplateInvitation = "team.invitation"

// PathInvitation is where an invitation's link points; the token follows.
const PathInvitation = "/invitations/"

// Invitation is a pending invitation, or the one behind a link.
type Invitation struct {
	ID            uuid.UUID
	WorkspaceID   uuid.UUID
	WorkspaceName string
	Email         string
	Role          string
	InvitedBy     string // the inviter's email; empty once their account is gone
	Created       time.Time
	Expires       time.Time
	Sent          *time.Time
}

// Expired reports whether the invitation's link no longer works at now.
func (i Invitation) Expired(now time.Time) bool { return !now.Before(i.Expires) }

// Seats is how much of the plan's MEMBERS limit a workspace uses: members
// (suspended ones included) and pending invitations that have not expired.
type Seats struct {
	Members int
	Pending int
	Limit   int // plan.Unlimited when there is none
}

// Full reports whether no one else can be invited.
func (s Seats) Full() bool { return s.Limit != plan.Unlimited && s.Members+s.Pending >= s.Limit }

// Seats counts the workspace's use of its plan's MEMBERS limit.
func (s *Service) Seats(ctx context.Context, ws workspace.Workspace) (Seats, error) {
	return seats(ctx, s.q, s.plans, ws.ID, ws.Plan)
}

func seats(ctx context.Context, q *dbq.Queries, plans plan.Table, workspaceID uuid.UUID, p plan.ID) (Seats, error) {
	members, err := q.MembershipCount(ctx, workspaceID)
	if err != nil {
		return Seats{}, fmt.Errorf("team: count members: %w", err)
	}
	pending, err := q.InvitationOpenCount(ctx, workspaceID)
	if err != nil {
		return Seats{}, fmt.Errorf("team: count invitations: %w", err)
	}
	return Seats{Members: int(members), Pending: int(pending), Limit: plans.Get(p).Limits.Members}, nil
}

// Invitations returns the workspace's pending invitations (expired ones too, until
// they are revoked or sent again), newest first.
func (s *Service) Invitations(ctx context.Context, workspaceID uuid.UUID) ([]Invitation, error) {
	rows, err := s.q.InvitationListOpen(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("team: invitations: %w", err)
	}
	out := make([]Invitation, len(rows))
	for i, r := range rows {
		out[i] = Invitation{
			ID: r.ID, WorkspaceID: r.WorkspaceID, Email: r.Email, Role: r.Role,
			Created: r.CreatedAt, Expires: r.ExpiresAt, Sent: r.SentAt, InvitedBy: deref(r.InvitedByEmail),
		}
	}
	return out, nil
}

// Invite invites email into the workspace with role and queues the email, in one
// transaction. Refused: on a plan without teams (the message points to the plan
// that has them), when members and pending invitations fill the plan's MEMBERS,
// for a current member, and for an address already invited (resend instead).
func (s *Service) Invite(ctx context.Context, ws workspace.Workspace, by uuid.UUID, email, role string) (Invitation, error) {
	if !ws.CanManage() {
		return Invitation{}, errNeedsAdmin(ws)
	}
	email, err := auth.NormalizeEmail(email)
	if err != nil {
		return Invitation{}, err
	}
	if err := checkAssignable(role); err != nil {
		return Invitation{}, err
	}
	var inv Invitation
	err = s.tx(ctx, "invite", func(tx pgx.Tx, q *dbq.Queries) error {
		row, err := q.WorkspaceGetForUpdate(ctx, ws.ID)
		if err != nil {
			return err
		}
		p := plan.ID(row.Plan)
		if err := s.teamPlan(p); err != nil {
			return err
		}
		if member, err := q.MemberExistsByEmail(ctx, dbq.MemberExistsByEmailParams{WorkspaceID: ws.ID, Email: email}); err != nil {
			return err
		} else if member {
			return &apperr.Error{Code: apperr.Conflict, Field: "email", Message: fmt.Sprintf("%s is already a member of %s.", email, row.Name)}
		}
		if err := q.InvitationDeleteExpired(ctx, dbq.InvitationDeleteExpiredParams{WorkspaceID: ws.ID, Email: email}); err != nil {
			return err
		}
		st, err := seats(ctx, q, s.plans, ws.ID, p)
		if err != nil {
			return err
		}
		if st.Full() {
			return s.seatsFull(p, st)
		}
		created, err := q.InvitationCreate(ctx, dbq.InvitationCreateParams{
			WorkspaceID: ws.ID, Email: email, Role: role, InvitedBy: &by, ExpiresAt: time.Now().Add(InvitationTTL),
		})
		if db.IsUniqueViolation(err, "invitations_open_email_key") {
			return &apperr.Error{Code: apperr.Conflict, Field: "email", Message: fmt.Sprintf("%s is already invited; send the invitation again from the list instead.", email)}
		}
		if err != nil {
			return err
		}
		inv = Invitation{ID: created.ID, WorkspaceID: ws.ID, WorkspaceName: row.Name, Email: email, Role: role, Created: created.CreatedAt, Expires: created.ExpiresAt}
		if err := audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.MemberInvited, TargetKind: "invitation", TargetID: created.ID.String(),
			Detail: map[string]any{"role": role},
		}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, created)
	})
	if err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// Resend mails a pending invitation again with a new link. The old link dies at
// once; the new one works for InvitationTTL from when its email is sent.
func (s *Service) Resend(ctx context.Context, ws workspace.Workspace, id uuid.UUID) error {
	return s.changeInvitation(ctx, ws, id, "resend", func(ctx context.Context, tx pgx.Tx, q *dbq.Queries, inv dbq.Invitation) error {
		if err := q.InvitationClearToken(ctx, dbq.InvitationClearTokenParams{WorkspaceID: ws.ID, ID: id}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.InvitationResent, TargetKind: "invitation", TargetID: id.String(),
			Detail: map[string]any{"role": inv.Role},
		}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, inv)
	})
}

// RevokeInvitation withdraws a pending invitation: its link stops working and an
// email still queued for it is not sent.
func (s *Service) RevokeInvitation(ctx context.Context, ws workspace.Workspace, id uuid.UUID) error {
	return s.changeInvitation(ctx, ws, id, "revoke invitation", func(ctx context.Context, _ pgx.Tx, q *dbq.Queries, inv dbq.Invitation) error {
		if err := q.InvitationRevoke(ctx, dbq.InvitationRevokeParams{WorkspaceID: ws.ID, ID: id}); err != nil {
			return err
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: audit.InvitationRevoked, TargetKind: "invitation", TargetID: id.String(),
			Detail: map[string]any{"role": inv.Role},
		})
	})
}

// changeInvitation locks a pending invitation of the workspace and applies fn.
func (s *Service) changeInvitation(ctx context.Context, ws workspace.Workspace, id uuid.UUID, what string,
	fn func(context.Context, pgx.Tx, *dbq.Queries, dbq.Invitation) error) error {
	if !ws.CanManage() {
		return errNeedsAdmin(ws)
	}
	return s.tx(ctx, what, func(tx pgx.Tx, q *dbq.Queries) error {
		inv, err := q.InvitationGetForUpdate(ctx, dbq.InvitationGetForUpdateParams{WorkspaceID: ws.ID, ID: id})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && (inv.AcceptedAt != nil || inv.RevokedAt != nil)) {
			return apperr.New(apperr.NotFound, "No pending invitation with that id in this workspace.")
		}
		if err != nil {
			return err
		}
		return fn(ctx, tx, q, inv)
	})
}

func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, inv dbq.Invitation) error {
	return s.outbox.EnqueueTx(ctx, tx, mail.SendArgs{
		Template: TemplateInvitation, To: []string{inv.Email},
		Data: map[string]string{"invitation_id": inv.ID.String(), "workspace_id": inv.WorkspaceID.String()},
	})
}

// composeInvitation mints the invitation's token in the sending transaction: the
// hash replaces any earlier one (killing the older link) and only the email holds
// the token. An invitation accepted or revoked meanwhile is not mailed.
func (s *Service) composeInvitation(ctx context.Context, tx pgx.Tx, args mail.SendArgs) (mail.Message, error) {
	id, err := uuid.Parse(args.Data["invitation_id"])
	if err != nil {
		return mail.Message{}, fmt.Errorf("team: invitation email without an invitation id: %w", err)
	}
	q := s.q.WithTx(tx)
	token, hash := onetime.New()
	expires := time.Now().Add(InvitationTTL)
	row, err := q.InvitationSetToken(ctx, dbq.InvitationSetTokenParams{ID: id, TokenHash: hash, ExpiresAt: expires})
	if errors.Is(err, pgx.ErrNoRows) {
		return mail.Message{}, mail.ErrSkip
	}
	if err != nil {
		return mail.Message{}, err
	}
	inv, err := q.InvitationByHash(ctx, hash)
	if err != nil {
		return mail.Message{}, err
	}
	who := "Someone"
	if inv.InvitedByEmail != nil {
		who = *inv.InvitedByEmail
	}
	link := s.baseURL + PathInvitation + token
	text := fmt.Sprintf(`%s invited you to join the workspace "%s" on Cairn as %s %s.

Accept the invitation:
%s

The link works once, only for %s, and expires on %s. If you have no Cairn account
yet, sign up with this address from the link.

If you did not expect this invitation, ignore this email.
`, who, inv.WorkspaceName, workspace.Article(row.Role), row.Role, link, row.Email, expires.UTC().Format("2 Jan 2006 15:04 UTC"))
	return mail.Message{
		To:      []string{row.Email},
		Subject: fmt.Sprintf("You are invited to join %s on Cairn", inv.WorkspaceName),
		Text:    text,
	}, nil
}

// Lookup returns the invitation behind a link's token, or why it no longer works:
// not_found for an unknown token (one replaced by a newer email included), conflict
// for an invitation already used, revoked or expired.
func (s *Service) Lookup(ctx context.Context, token string) (Invitation, error) {
	row, err := s.q.InvitationByHash(ctx, onetime.Hash(token))
	if errors.Is(err, pgx.ErrNoRows) {
		return Invitation{}, errUnknownInvitation
	}
	if err != nil {
		return Invitation{}, fmt.Errorf("team: invitation: %w", err)
	}
	inv := Invitation{
		ID: row.ID, WorkspaceID: row.WorkspaceID, WorkspaceName: row.WorkspaceName, Email: row.Email, Role: row.Role,
		InvitedBy: deref(row.InvitedByEmail), Created: row.CreatedAt, Expires: row.ExpiresAt, Sent: row.SentAt,
	}
	return inv, usable(row.AcceptedAt, row.RevokedAt, inv.Expires, inv.InvitedBy)
}

var errUnknownInvitation = apperr.New(apperr.NotFound,
	"This invitation link is not valid. If the invitation was sent again, only the link in the newest email works.")

// usable says why an invitation can no longer be accepted, or nil.
func usable(accepted, revoked *time.Time, expires time.Time, inviter string) error {
	ask := "ask the workspace's admin"
	if inviter != "" {
		ask = "ask " + inviter
	}
	switch {
	case accepted != nil:
		return apperr.New(apperr.Conflict, "This invitation has already been used; a link works only once.")
	case revoked != nil:
		return apperr.New(apperr.Conflict, "This invitation was withdrawn; %s for a new one if you still need it.", ask)
	case !time.Now().Before(expires):
		return apperr.New(apperr.Conflict, "This invitation expired on %s; %s to send it again.", expires.UTC().Format("2 Jan 2006 15:04 UTC"), ask)
	}
	return nil
}

// Accept makes the signed-in person (userID, email) a member of the invitation's
// workspace with its role. Only the invited address may accept, once, before the
// link expires, and only while the workspace's plan has room. Accepting proves the
// person reads mail at that address.
func (s *Service) Accept(ctx context.Context, token string, userID uuid.UUID, email string) (workspace.Workspace, error) {
	hash := onetime.Hash(token)
	var ws workspace.Workspace
	err := s.tx(ctx, "accept invitation", func(_ pgx.Tx, q *dbq.Queries) error {
		peek, err := q.InvitationByHash(ctx, hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return errUnknownInvitation
		}
		if err != nil {
			return err
		}
		// The workspace first, then the invitation: the order Invite locks them in.
		wsRow, err := q.WorkspaceGetForUpdate(ctx, peek.WorkspaceID)
		if err != nil {
			return err
		}
		inv, err := q.InvitationByHashForUpdate(ctx, hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return errUnknownInvitation
		}
		if err != nil {
			return err
		}
		if err := usable(inv.AcceptedAt, inv.RevokedAt, inv.ExpiresAt, deref(peek.InvitedByEmail)); err != nil {
			return err
		}
		if !strings.EqualFold(inv.Email, email) {
			return apperr.New(apperr.Forbidden, "This invitation is for %s, and you are logged in as %s. Log out, then log in or sign up as %s to accept it.", inv.Email, email, inv.Email)
		}
		if _, err := q.MembershipGet(ctx, dbq.MembershipGetParams{UserID: userID, WorkspaceID: inv.WorkspaceID}); err == nil {
			return apperr.New(apperr.Conflict, "You are already a member of %s.", wsRow.Name)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		p := plan.ID(wsRow.Plan)
		if err := s.teamPlan(p); err != nil {
			return apperr.New(apperr.Forbidden, "%s is on the %s plan now, which allows %d member; its owner must upgrade before anyone can join.",
				wsRow.Name, s.plans.Get(p).Name, s.plans.Get(p).Limits.Members)
		}
		members, err := q.MembershipCount(ctx, inv.WorkspaceID)
		if err != nil {
			return err
		}
		if limit := s.plans.Get(p).Limits.Members; limit != plan.Unlimited && int(members) >= limit {
			return apperr.New(apperr.Forbidden, "%s already has the %d members its %s plan allows; ask its admins to make room.", wsRow.Name, limit, s.plans.Get(p).Name)
		}
		if err := q.MembershipCreate(ctx, dbq.MembershipCreateParams{WorkspaceID: inv.WorkspaceID, UserID: userID, Role: inv.Role}); err != nil {
			return err
		}
		if err := q.InvitationAccept(ctx, dbq.InvitationAcceptParams{ID: inv.ID, AcceptedBy: &userID}); err != nil {
			return err
		}
		// The link reached this address and only this address may use it: that
		// proves the address as a verification link would.
		if n, err := q.UserMarkVerified(ctx, dbq.UserMarkVerifiedParams{ID: userID, Email: inv.Email}); err != nil {
			return err
		} else if n > 0 {
			if err := audit.Record(ctx, q, audit.Entry{
				Action: audit.EmailVerified, TargetKind: "user", TargetID: userID.String(),
				Detail: map[string]any{"by": "invitation"},
			}); err != nil {
				return err
			}
		}
		ws = workspace.Workspace{ID: wsRow.ID, Name: wsRow.Name, Plan: p, Role: inv.Role}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: inv.WorkspaceID, Action: audit.MemberJoined, TargetKind: "user", TargetID: userID.String(),
			Detail: map[string]any{"role": inv.Role, "invitation": inv.ID.String()},
		})
	})
	if err != nil {
		return workspace.Workspace{}, err
	}
	return ws, nil
}

// teamPlan refuses invitations on a plan without teams, naming the plan that has them.
func (s *Service) teamPlan(p plan.ID) error {
	cur := s.plans.Get(p)
	if cur.Team {
		return nil
	}
	for _, t := range s.plans {
		if t.Team {
			return apperr.New(apperr.Forbidden, "Inviting members is part of the %s plan (up to %s members, roles and an audit log); the %s plan allows %d member. Upgrade on the Billing page.",
				t.Name, plan.Format(int64(t.Limits.Members)), cur.Name, cur.Limits.Members)
		}
	}
	return apperr.New(apperr.Forbidden, "The %s plan allows %d member.", cur.Name, cur.Limits.Members)
}

func (s *Service) seatsFull(p plan.ID, st Seats) error {
	cur := s.plans.Get(p)
	msg := fmt.Sprintf("The %s plan allows %d members, and this workspace has %d %s and %d pending %s. Revoke an invitation or remove a member to invite someone else",
		cur.Name, st.Limit, st.Members, pluralize(st.Members, "member", "members"), st.Pending, pluralize(st.Pending, "invitation", "invitations"))
	if next, ok := s.plans.Next(p, func(l plan.Limits) int64 { return int64(l.Members) }); ok && next.Team {
		msg += fmt.Sprintf(", or upgrade to %s (%s members)", next.Name, plan.Format(int64(next.Limits.Members)))
	}
	return apperr.New(apperr.Forbidden, "%s.", msg)
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
