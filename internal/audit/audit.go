// Package audit records who did what to a workspace in an append-only log. A
// database trigger refuses UPDATE, DELETE and TRUNCATE on the table, so nothing in
// Cairn can rewrite history; entries name people and workspaces by id only, so the
// log survives the deletion of either.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// ActorKind says what kind of party acted.
type ActorKind string

// Actor kinds. A person is a user; Stripe acts through webhooks; the system through
// admin commands and background work; a device through the device sign-in.
const (
	ActorUser   ActorKind = "user"
	ActorStripe ActorKind = "stripe"
	ActorSystem ActorKind = "system"
	// ActorDevice is a device (the extension) signing in, before it has a key.
	ActorDevice ActorKind = "device"
)

// Actor is who caused a change and from where.
type Actor struct {
	Kind      ActorKind
	UserID    *uuid.UUID
	IP        string
	UserAgent string
}

// User returns the actor for a signed-in person.
func User(id uuid.UUID, ip, userAgent string) Actor {
	return Actor{Kind: ActorUser, UserID: &id, IP: ip, UserAgent: userAgent}
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the request, so domain services record
// it without knowing about HTTP.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx; without one the system acted.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Kind: ActorSystem}
}

// Action names what happened; the dashboard filters on it.
type Action string

// The actions Cairn records. Keep names stable: they are stored and exported.
const (
	Login                 Action = "user.login"
	LoginFailed           Action = "user.login_failed"
	KeyCreated            Action = "api_key.created"
	KeyRevoked            Action = "api_key.revoked"
	KeyRolled             Action = "api_key.rolled"
	MemberInvited         Action = "member.invited"
	InvitationResent      Action = "invitation.resent"
	InvitationRevoked     Action = "invitation.revoked"
	MemberJoined          Action = "member.joined"
	MemberRemoved         Action = "member.removed"
	MemberRoleChanged     Action = "member.role_changed"
	MemberLeft            Action = "member.left"
	MembersSuspended      Action = "members.suspended"
	MembersRestored       Action = "members.restored"
	OwnershipTransferred  Action = "ownership.transferred"
	PlanChanged           Action = "plan.changed"
	SubscriptionCancelled Action = "subscription.cancelled"
	BillingPortalOpened   Action = "billing.portal_opened"
	DocumentDeleted       Action = "document.deleted"
	SettingsChanged       Action = "settings.changed"
	DeviceCodeIssued      Action = "device.code_issued"
	DeviceApproved        Action = "device.approved"
	DeviceDenied          Action = "device.denied"
	DeviceKeyIssued       Action = "device.key_issued"
	EmailVerified         Action = "user.email_verified"
	EmailChanged          Action = "user.email_changed"
	PasswordChanged       Action = "user.password_changed"
	PasswordReset         Action = "user.password_reset"
	SessionEnded          Action = "user.session_ended"
	AccountDeleted        Action = "user.deleted"
	WorkspaceDeleted      Action = "workspace.deleted"
)

// Entry is one thing that happened. WorkspaceID is uuid.Nil for account-level events
// that belong to no workspace. Actor, when nil, is taken from the context.
type Entry struct {
	WorkspaceID uuid.UUID
	Actor       *Actor
	Action      Action
	// TargetKind and TargetID name what was acted on ("api_key", its id; "user", an id).
	TargetKind string
	TargetID   string
	// Detail holds small extra facts (a key's prefix, a plan's old and new value). It
	// must never hold a secret or an email address.
	Detail map[string]any
}

// Record appends e through q, which is normally the caller's transaction so that the
// entry commits or rolls back with the change it describes.
func Record(ctx context.Context, q *dbq.Queries, e Entry) error {
	a := ActorFrom(ctx)
	if e.Actor != nil {
		a = *e.Actor
	}
	if a.Kind == "" {
		a.Kind = ActorSystem
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("audit: %s: detail: %w", e.Action, err)
		}
	}
	var ws *uuid.UUID
	if e.WorkspaceID != uuid.Nil {
		ws = &e.WorkspaceID
	}
	err := q.AuditInsert(ctx, dbq.AuditInsertParams{
		WorkspaceID: ws, ActorKind: string(a.Kind), ActorUserID: a.UserID, Action: string(e.Action),
		TargetKind: e.TargetKind, TargetID: Clean(e.TargetID, 256), Detail: detail,
		Ip: Clean(a.IP, 64), UserAgent: Clean(a.UserAgent, 512),
	})
	if err != nil {
		return fmt.Errorf("audit: %s: %w", e.Action, err)
	}
	return nil
}

// Clean makes a caller-supplied string storable: valid UTF-8 without NUL (which
// PostgreSQL refuses in text), at most max bytes.
func Clean(s string, max int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
