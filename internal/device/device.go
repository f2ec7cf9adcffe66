// Package device signs devices (the browser extension) in with the OAuth 2.0 device
// authorization grant (RFC 8628): the device asks for a pair of codes, shows the
// short one to its person, who confirms it at /activate while signed in and picks a
// workspace; the device polls with the long one and receives an API key made for it.
// Codes live ten minutes and are stored only as their SHA-256; an attempt is decided
// once and yields at most one key; every step is in the audit log.
package device

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/onetime"
	"github.com/cairn-dev/cairn/internal/workspace"
)

const (
	// Lifetime is how long a pair of codes can be used.
	Lifetime = 10 * time.Minute
	// Interval is how many seconds a device waits between polls at first.
	Interval = 5
	// slowDownStep is what each slow_down adds to the interval (RFC 8628 §3.5).
	slowDownStep = 5
	// pollTolerance forgives a poll that arrives a little early: requests are
	// timed at the server, and the network can bunch two polls up.
	pollTolerance = time.Second
	// DefaultClientName names a device that did not say what it is.
	DefaultClientName = "Browser extension"
)

// Scopes are what a device key may do: everything the extension does (save, search,
// ask, show the quota), and not reading back or exporting documents.
const Scopes = apikey.DocumentsWrite | apikey.Search | apikey.Answer | apikey.UsageRead

// userCodeAlphabet has no vowels (no words by accident) and no look-alikes (RFC
// 8628 §6.1): 20 letters, 8 of them a code, about 34.6 bits.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

const userCodeLen = 8

// The RFC 8628 and RFC 6749 error codes a polling device is told.
const (
	Pending      = "authorization_pending"
	SlowDown     = "slow_down"
	AccessDenied = "access_denied"
	ExpiredToken = "expired_token"
	InvalidGrant = "invalid_grant"
)

// GrantError is a poll's refusal in the RFC's terms: Code is one of the constants
// above, Description says it in words.
type GrantError struct {
	Code        string
	Description string
	// Interval is the interval in force after a slow_down, in seconds.
	Interval int
}

func (e *GrantError) Error() string { return e.Code + ": " + e.Description }

// Authorization is a fresh pair of codes. DeviceCode goes to the device only;
// UserCode is what its person types, formatted XXXX-XXXX.
type Authorization struct {
	DeviceCode string
	UserCode   string
	ExpiresIn  time.Duration
	Interval   int
}

// Request is an attempt waiting at /activate, as the person approving it sees it.
type Request struct {
	UserCode   string
	ClientName string
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Issued is what a device receives once approved: a key, shown once.
type Issued struct {
	apikey.Created
	WorkspaceID uuid.UUID
}

// Service runs device sign-ins.
type Service struct {
	pool       *pgxpool.Pool
	q          *dbq.Queries
	keys       *apikey.Service
	workspaces *workspace.Service
	now        func() time.Time
}

// NewService returns a Service that mints keys through keys.
func NewService(pool *pgxpool.Pool, keys *apikey.Service, workspaces *workspace.Service) *Service {
	return &Service{pool: pool, q: dbq.New(pool), keys: keys, workspaces: workspaces, now: time.Now}
}

// SetClock replaces the clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Start opens an attempt for a device calling itself clientName (empty: a default
// name) from client, and returns its codes.
func (s *Service) Start(ctx context.Context, clientName string, client apikey.Client) (Authorization, error) {
	name := DefaultClientName
	if strings.TrimSpace(clientName) != "" {
		n, err := apikey.ValidateName(clientName)
		if err != nil {
			return Authorization{}, apperr.Field("client_name", "%s", strings.TrimPrefix(err.(*apperr.Error).Message, "name: "))
		}
		name = n
	}
	now := s.now()
	for attempt := 0; ; attempt++ {
		deviceCode, deviceHash := onetime.New()
		userCode := newUserCode()
		var row dbq.DeviceAuthorization
		err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
			q := s.q.WithTx(tx)
			var err error
			row, err = q.DeviceAuthorizationCreate(ctx, dbq.DeviceAuthorizationCreateParams{
				DeviceHash: deviceHash, UserHash: userCodeHash(userCode), ClientName: name,
				Ip: audit.Clean(client.IP, 64), UserAgent: audit.Clean(client.UserAgent, 512),
				CreatedAt: now, ExpiresAt: now.Add(Lifetime), IntervalSeconds: Interval,
			})
			if err != nil {
				return err
			}
			return audit.Record(ctx, q, audit.Entry{
				Actor:  &audit.Actor{Kind: audit.ActorDevice, IP: client.IP, UserAgent: client.UserAgent},
				Action: audit.DeviceCodeIssued, TargetKind: "device_authorization", TargetID: row.ID.String(),
				Detail: map[string]any{"client_name": name},
			})
		})
		// A user code still held by another attempt (live or not yet pruned): draw again.
		if db.IsUniqueViolation(err, "device_authorizations_user_hash_key") && attempt < 5 {
			continue
		}
		if err != nil {
			return Authorization{}, fmt.Errorf("device: start: %w", err)
		}
		return Authorization{DeviceCode: deviceCode, UserCode: userCode, ExpiresIn: Lifetime, Interval: Interval}, nil
	}
}

// Lookup returns the pending attempt with userCode for the /activate page. It
// returns not_found for a code that is unknown, expired or already decided, in
// words the person can act on.
func (s *Service) Lookup(ctx context.Context, userCode string) (Request, error) {
	norm, ok := NormalizeUserCode(userCode)
	if !ok {
		return Request{}, errBadCode
	}
	row, err := s.q.DeviceAuthorizationByUserCode(ctx, userCodeHash(norm))
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, errNoCode
	}
	if err != nil {
		return Request{}, fmt.Errorf("device: lookup: %w", err)
	}
	if err := s.stillOpen(row); err != nil {
		return Request{}, err
	}
	return toRequest(row, norm), nil
}

var (
	errBadCode = apperr.Field("user_code", "codes are 8 letters, like BCDF-GHJK")
	errNoCode  = apperr.New(apperr.NotFound, "No sign-in is waiting for that code. Check it against the one your device shows, or start again there.")
)

// stillOpen refuses an attempt that can no longer be decided.
func (s *Service) stillOpen(row dbq.DeviceAuthorization) error {
	switch {
	case row.Status != "pending":
		return apperr.New(apperr.Conflict, "This code has already been used: each sign-in is approved or denied once. Start again from your device if you need to.")
	case !s.now().Before(row.ExpiresAt):
		return apperr.New(apperr.NotFound, "This code has expired (codes last %d minutes). Start again from your device.", int(Lifetime.Minutes()))
	}
	return nil
}

// Decide approves or denies the attempt with userCode on behalf of userID. An
// approval puts the device's key in workspaceID, where the person needs at least
// the member role (the role that makes keys) and the plan must allow another key;
// otherwise nothing changes and the device keeps waiting. A denial is final.
func (s *Service) Decide(ctx context.Context, userID uuid.UUID, userCode string, workspaceID uuid.UUID, approve bool) (Request, workspace.Workspace, error) {
	norm, ok := NormalizeUserCode(userCode)
	if !ok {
		return Request{}, workspace.Workspace{}, errBadCode
	}
	ws, err := s.workspaces.ForUser(ctx, userID, workspaceID)
	switch {
	case apperr.Is(err, apperr.NotFound) && approve:
		return Request{}, ws, apperr.New(apperr.NotFound, "You are not a member of that workspace; pick one of yours.")
	case apperr.Is(err, apperr.NotFound):
		ws = workspace.Workspace{} // a denial needs no workspace
	case err != nil:
		return Request{}, ws, err
	case approve && !ws.Allows(workspace.RoleMember):
		return Request{}, ws, apperr.New(apperr.Forbidden, "Signing a device in to %s makes an API key there, which needs the member role (or a higher one); you are a %s.", ws.Name, ws.Role)
	}
	var req Request
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		row, err := q.DeviceAuthorizationByUserCodeForUpdate(ctx, userCodeHash(norm))
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoCode
		}
		if err != nil {
			return err
		}
		if err := s.stillOpen(row); err != nil {
			return err
		}
		req = toRequest(row, norm)
		status, action := "denied", audit.DeviceDenied
		var wsID *uuid.UUID
		if approve {
			status, action, wsID = "approved", audit.DeviceApproved, &ws.ID
			// Refuse now rather than at the device's next poll: the person can still
			// verify their email, revoke a key or pick another workspace.
			if err := auth.RequireVerifiedTx(ctx, q, userID); err != nil {
				return err
			}
			if err := s.keys.CheckCap(ctx, q, ws.ID); err != nil {
				return err
			}
		}
		if err := q.DeviceAuthorizationDecide(ctx, dbq.DeviceAuthorizationDecideParams{
			Status: status, WorkspaceID: wsID, DecidedBy: &userID, DecidedAt: s.now(), ID: row.ID,
		}); err != nil {
			return err
		}
		// A denial is logged in the chosen workspace when the person belongs to it.
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: ws.ID, Action: action, TargetKind: "device_authorization", TargetID: row.ID.String(),
			Detail: map[string]any{"client_name": row.ClientName, "device_ip": row.Ip, "device_user_agent": row.UserAgent},
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Request{}, ws, err
		}
		return Request{}, ws, fmt.Errorf("device: decide: %w", err)
	}
	return req, ws, nil
}

// Poll answers a device polling with deviceCode from client: its key once the
// attempt is approved (exactly once), otherwise a *GrantError saying why not.
func (s *Service) Poll(ctx context.Context, deviceCode string, client apikey.Client) (Issued, error) {
	if deviceCode == "" || len(deviceCode) > 256 {
		return Issued{}, &GrantError{Code: InvalidGrant, Description: "Unknown device_code."}
	}
	// The device acts: its key's creation is logged as its doing.
	ctx = audit.WithActor(ctx, audit.Actor{Kind: audit.ActorDevice, IP: client.IP, UserAgent: client.UserAgent})
	var issued Issued
	var grantErr *GrantError
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		row, err := q.DeviceAuthorizationByDeviceCodeForUpdate(ctx, onetime.Hash(deviceCode))
		if errors.Is(err, pgx.ErrNoRows) {
			grantErr = &GrantError{Code: InvalidGrant, Description: "Unknown device_code."}
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case row.Status == "issued":
			grantErr = &GrantError{Code: InvalidGrant, Description: "This device_code has already been exchanged for a key; codes are single-use."}
			return nil
		case row.Status == "denied":
			grantErr = &GrantError{Code: AccessDenied, Description: "The sign-in was denied."}
			return nil
		case !now.Before(row.ExpiresAt):
			grantErr = &GrantError{Code: ExpiredToken, Description: fmt.Sprintf("The codes expired after %d minutes; start again.", int(Lifetime.Minutes()))}
			return nil
		}
		interval := int(row.IntervalSeconds)
		if row.LastPolledAt != nil && now.Sub(*row.LastPolledAt) < time.Duration(interval)*time.Second-pollTolerance {
			interval += slowDownStep
			grantErr = &GrantError{Code: SlowDown, Description: fmt.Sprintf("Polling too fast: wait %d seconds between polls.", interval), Interval: interval}
			return q.DeviceAuthorizationPolled(ctx, dbq.DeviceAuthorizationPolledParams{PolledAt: now, IntervalSeconds: int32(interval), ID: row.ID})
		}
		if row.Status == "pending" {
			grantErr = &GrantError{Code: Pending, Description: "Waiting for the sign-in to be approved at the verification URI."}
			return q.DeviceAuthorizationPolled(ctx, dbq.DeviceAuthorizationPolledParams{PolledAt: now, IntervalSeconds: int32(interval), ID: row.ID})
		}
		// Approved: mint the device's key in the chosen workspace, once.
		created, err := s.keys.CreateTx(ctx, tx, *row.WorkspaceID, row.DecidedBy, apikey.Spec{
			Name: row.ClientName, Kind: apikey.KindDevice, Scopes: Scopes,
			Detail: map[string]any{"device_authorization": row.ID.String()},
		})
		if apperr.Is(err, apperr.Forbidden) {
			// The plan's key limit was reached between approval and this poll.
			grantErr = &GrantError{Code: AccessDenied, Description: apperr.As(err).Message}
			return nil
		}
		if err != nil {
			return err
		}
		if err := q.DeviceAuthorizationIssued(ctx, dbq.DeviceAuthorizationIssuedParams{KeyID: &created.ID, PolledAt: now, ID: row.ID}); err != nil {
			return err
		}
		issued = Issued{Created: created, WorkspaceID: *row.WorkspaceID}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: *row.WorkspaceID, Action: audit.DeviceKeyIssued, TargetKind: "api_key", TargetID: created.ID.String(),
			Detail: map[string]any{"device_authorization": row.ID.String(), "client_name": row.ClientName, "prefix": created.Prefix},
		})
	})
	if err != nil {
		if apperr.As(err) != nil {
			return Issued{}, err
		}
		return Issued{}, fmt.Errorf("device: poll: %w", err)
	}
	if grantErr != nil {
		return Issued{}, grantErr
	}
	return issued, nil
}

// Prune deletes attempts a day past their expiry.
func (s *Service) Prune(ctx context.Context) error {
	if _, err := s.q.DeviceAuthorizationPrune(ctx); err != nil {
		return fmt.Errorf("device: prune: %w", err)
	}
	return nil
}

// NormalizeUserCode reads a user code as a person may type it (any case, with or
// without the dash or spaces) and returns it as XXXX-XXXX; ok is false when it
// cannot be a code.
func NormalizeUserCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	c := b.String()
	if len(c) != userCodeLen {
		return "", false
	}
	return c[:4] + "-" + c[4:], true
}

func newUserCode() string {
	b := make([]byte, userCodeLen)
	max := big.NewInt(int64(len(userCodeAlphabet)))
	for i := range b {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("device: crypto/rand failed: " + err.Error())
		}
		b[i] = userCodeAlphabet[n.Int64()]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// userCodeHash is what is stored of a normalized user code.
func userCodeHash(code string) []byte { return onetime.Hash(code) }

func toRequest(r dbq.DeviceAuthorization, userCode string) Request {
	return Request{
		UserCode: userCode, ClientName: r.ClientName, IP: r.Ip, UserAgent: r.UserAgent,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
	}
}
