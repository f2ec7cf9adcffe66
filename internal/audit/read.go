package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// Actions lists every action Cairn records, for the log's filter.
var Actions = []Action{
	Login, LoginFailed, KeyCreated, KeyRevoked, KeyRolled,
	MemberInvited, InvitationResent, InvitationRevoked, MemberJoined, MemberRemoved, MemberRoleChanged, MemberLeft,
	MembersSuspended, MembersRestored, OwnershipTransferred,
	PlanChanged, SubscriptionCancelled, BillingPortalOpened, DocumentDeleted, SettingsChanged,
	DeviceCodeIssued, DeviceApproved, DeviceDenied, DeviceKeyIssued,
	EmailVerified, EmailChanged, PasswordChanged, PasswordReset, SessionEnded, AccountDeleted, WorkspaceDeleted,
}

// Filter selects entries of one workspace's log. Zero fields do not filter.
type Filter struct {
	WorkspaceID uuid.UUID
	// ActorKind and ActorUserID select who acted: a kind alone (Stripe, the
	// system), or a person.
	ActorKind   ActorKind
	ActorUserID *uuid.UUID
	Action      Action
	// From and To bound the time, From included and To excluded.
	From, To *time.Time
	// Before continues a listing below this entry id.
	Before int64
}

// Row is one entry as the log page and its export show it, with people and
// invitations named by their current email.
type Row struct {
	ID         int64
	At         time.Time
	ActorKind  ActorKind
	ActorID    *uuid.UUID
	ActorEmail string // empty when the account is gone or the actor is not a person
	Action     Action
	TargetKind string
	TargetID   string
	// Target names what was acted on for people: an email, a key's name and prefix.
	Target    string
	Detail    map[string]any
	IP        string
	UserAgent string
}

// Actor says who acted, in words.
func (r Row) Actor() string {
	switch {
	case r.ActorKind == ActorStripe:
		return "Stripe"
	case r.ActorKind == ActorSystem:
		return "system"
	case r.ActorKind == ActorDevice:
		return "a device signing in"
	case r.ActorEmail != "":
		return r.ActorEmail
	case r.ActorID != nil:
		return "deleted account " + r.ActorID.String()[:8]
	}
	return "anonymous"
}

// Log reads workspaces' audit logs.
type Log struct {
	q *dbq.Queries
}

// NewLog returns a Log reading through pool.
func NewLog(pool *pgxpool.Pool) *Log { return &Log{q: dbq.New(pool)} }

// PageSize is how many entries a page of the log holds.
const PageSize = 50

// Page returns up to limit entries matching f, newest first.
func (l *Log) Page(ctx context.Context, f Filter, limit int) ([]Row, error) {
	p := dbq.AuditPageParams{WorkspaceID: &f.WorkspaceID, ActorUserID: f.ActorUserID, Since: f.From, Until: f.To, Lim: int32(limit)}
	if f.ActorKind != "" {
		k := string(f.ActorKind)
		p.ActorKind = &k
	}
	if f.Action != "" {
		a := string(f.Action)
		p.Action = &a
	}
	if f.Before > 0 {
		p.BeforeID = &f.Before
	}
	rows, err := l.q.AuditPage(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("audit: page: %w", err)
	}
	return l.name(ctx, f.WorkspaceID, rows)
}

// Each calls fn for every entry matching f, newest first, reading a thousand at a
// time so a long log is never held in memory at once.
func (l *Log) Each(ctx context.Context, f Filter, fn func(Row) error) error {
	for {
		rows, err := l.Page(ctx, f, 1000)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(rows) < 1000 {
			return nil
		}
		f.Before = rows[len(rows)-1].ID
	}
}

// name turns rows into Rows, looking up the emails of the people and invitations
// they mention in two queries.
func (l *Log) name(ctx context.Context, workspaceID uuid.UUID, rows []dbq.AuditLog) ([]Row, error) {
	var users, invitations []uuid.UUID
	for _, r := range rows {
		if r.ActorUserID != nil {
			users = append(users, *r.ActorUserID)
		}
		if id, err := uuid.Parse(r.TargetID); err == nil {
			switch r.TargetKind {
			case "user":
				users = append(users, id)
			case "invitation":
				invitations = append(invitations, id)
			}
		}
	}
	emails := map[uuid.UUID]string{}
	if len(users) > 0 {
		found, err := l.q.AuditUserEmails(ctx, users)
		if err != nil {
			return nil, fmt.Errorf("audit: names: %w", err)
		}
		for _, u := range found {
			emails[u.ID] = u.Email
		}
	}
	if len(invitations) > 0 {
		found, err := l.q.AuditInvitationEmails(ctx, dbq.AuditInvitationEmailsParams{WorkspaceID: workspaceID, Ids: invitations})
		if err != nil {
			return nil, fmt.Errorf("audit: names: %w", err)
		}
		for _, i := range found {
			emails[i.ID] = i.Email
		}
	}
	out := make([]Row, len(rows))
	for i, r := range rows {
		row := Row{
			ID: r.ID, At: r.CreatedAt, ActorKind: ActorKind(r.ActorKind), ActorID: r.ActorUserID, Action: Action(r.Action),
			TargetKind: r.TargetKind, TargetID: r.TargetID, IP: r.Ip, UserAgent: r.UserAgent,
		}
		if r.ActorUserID != nil {
			row.ActorEmail = emails[*r.ActorUserID]
		}
		if len(r.Detail) > 0 {
			_ = json.Unmarshal(r.Detail, &row.Detail) // written by Record; a bad row only loses its detail
		}
		if id, err := uuid.Parse(r.TargetID); err == nil {
			row.Target = emails[id]
		}
		if r.TargetKind == "api_key" {
			if name, _ := row.Detail["name"].(string); name != "" {
				prefix, _ := row.Detail["prefix"].(string)
				row.Target = fmt.Sprintf("%s (%s…)", name, prefix)
			}
		}
		out[i] = row
	}
	return out, nil
}

// Query is the log page's query parameters as sent.
type Query struct {
	Actor, Action, From, To, Before string
}

// ParseFilter reads the log page's query: actor ("stripe", "system", "device", or a person's
// email; an unknown email matches nothing), action, and a date range from and to
// (YYYY-MM-DD, UTC, both days included). Bad values are invalid_request naming the
// parameter.
func (l *Log) ParseFilter(ctx context.Context, workspaceID uuid.UUID, qp Query) (Filter, error) {
	actor, action, from, to, before := qp.Actor, qp.Action, qp.From, qp.To, qp.Before
	f := Filter{WorkspaceID: workspaceID}
	switch actor = strings.TrimSpace(actor); {
	case actor == "":
	case strings.EqualFold(actor, string(ActorStripe)):
		f.ActorKind = ActorStripe
	case strings.EqualFold(actor, string(ActorSystem)):
		f.ActorKind = ActorSystem
	case strings.EqualFold(actor, string(ActorDevice)):
		f.ActorKind = ActorDevice
	case len(actor) > 254 || !strings.Contains(actor, "@"):
		return Filter{}, apperr.Field("actor", "give a person's email, stripe, system or device")
	default:
		id := uuid.Nil // nobody: the filter matches no entry
		u, err := l.q.UserGetByEmail(ctx, actor)
		if err == nil {
			id = u.ID
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return Filter{}, fmt.Errorf("audit: actor: %w", err)
		}
		f.ActorKind, f.ActorUserID = ActorUser, &id
	}
	if action = strings.TrimSpace(action); action != "" {
		known := false
		for _, a := range Actions {
			known = known || string(a) == action
		}
		if !known {
			return Filter{}, apperr.Field("action", "%q is not an action Cairn records", action)
		}
		f.Action = Action(action)
	}
	var err error
	if f.From, err = parseDay("from", from, 0); err != nil {
		return Filter{}, err
	}
	if f.To, err = parseDay("to", to, 1); err != nil {
		return Filter{}, err
	}
	if f.From != nil && f.To != nil && !f.From.Before(*f.To) {
		return Filter{}, apperr.Field("to", "must not be before from")
	}
	if before != "" {
		if _, err := fmt.Sscanf(before, "%d", &f.Before); err != nil || f.Before <= 0 {
			return Filter{}, apperr.Field("before", "must be an entry number")
		}
	}
	return f, nil
}

// parseDay reads a YYYY-MM-DD date as midnight UTC, plus days.
func parseDay(field, s string, days int) (*time.Time, error) {
	if s = strings.TrimSpace(s); s == "" {
		return nil, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return nil, apperr.Field(field, "use a date like 2025-01-31")
	}
	d = d.AddDate(0, 0, days)
	return &d, nil
}
