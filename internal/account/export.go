// Package account is what a person does with their account as a whole: take every
// piece of their data out (Export) and leave Cairn (Delete).
package account

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// exportRows is how many usage or audit rows an export reads at a time.
const exportRows = 1000

// DocumentLine is one document of an export, one JSON object a line. Its import
// fields are exactly what POST /v1/documents accepts for a document, so a line of
// GET /v1/export can be sent back as it is; the zip adds what the store knows about
// it (Info).
type DocumentLine struct {
	ID       string         `json:"id"`
	Title    string         `json:"title"`
	URL      string         `json:"url"`
	Metadata map[string]any `json:"metadata"`
	Text     string         `json:"text"`
	*Info
}

// Info is what the store knows about a document beyond what was sent.
type Info struct {
	Chunks    int       `json:"chunks"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WriteDocuments writes every document of the workspace to w as NDJSON, page by
// page (see retrieval.Service.EachDocument), so memory stays bounded. With info
// each line carries Info too. Without it, documents that hold no text (saved as
// failed: a page without readable text) are left out, since POST /v1/documents
// would refuse them; the dashboard's export keeps them.
func WriteDocuments(ctx context.Context, docs *retrieval.Service, workspaceID uuid.UUID, w io.Writer, info bool) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return docs.EachDocument(ctx, workspaceID, func(d retrieval.Document) error {
		if !info && d.Text == "" {
			return nil
		}
		line := DocumentLine{ID: d.ID, Title: d.Title, URL: d.URL, Metadata: d.Metadata, Text: d.Text}
		if line.Metadata == nil {
			line.Metadata = map[string]any{}
		}
		if info {
			line.Info = &Info{Chunks: d.Chunks, Status: d.Status, Reason: d.Reason, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
		}
		return enc.Encode(line)
	})
}

// Export writes the zip of everything the person's account holds to w, streaming:
// nothing is held in memory beyond one page of rows and the zip's compressor. What
// each workspace contributes follows what its dashboard shows the person's role:
//
//   - account.json: the account (id, email, when it was made and verified);
//   - workspaces.json: every workspace they belong to, with their role;
//   - workspaces/<id>/documents.ndjson: every document, its metadata and text, for
//     every role (all roles read documents);
//   - workspaces/<id>/api_keys.json: key metadata (never a secret or its hash):
//     every key for owners and admins, the person's own for others;
//   - workspaces/<id>/usage_daily.ndjson: usage by day, key, endpoint and status
//     (every role sees usage);
//   - workspaces/<id>/audit_log.ndjson: the whole log for owners and admins, what
//     the person did for others;
//   - audit_log.ndjson: account-level entries (no workspace) about the person.
//
// A workspace where the person is suspended (after a downgrade) gives only its
// entry in workspaces.json: they cannot open it until the plan allows them again.
func (s *Service) Export(ctx context.Context, userID uuid.UUID, w io.Writer) error {
	u, err := s.q.UserGet(ctx, userID)
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	mems, err := s.q.MembershipListForUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	z := zip.NewWriter(w)
	err = s.export(ctx, z, u, mems)
	if cerr := z.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	return nil
}

type exportedAccount struct {
	ID              uuid.UUID  `json:"id"`
	Email           string     `json:"email"`
	CreatedAt       time.Time  `json:"created_at"`
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	ExportedAt      time.Time  `json:"exported_at"`
}

type exportedWorkspace struct {
	ID          uuid.UUID  `json:"id"`
	Name        string     `json:"name"`
	Plan        string     `json:"plan"`
	Role        string     `json:"role"`
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

type exportedKey struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	Kind       string     `json:"kind"`
	CreatedBy  *uuid.UUID `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type exportedUsage struct {
	Day          string    `json:"day"`
	KeyID        uuid.UUID `json:"key_id"`
	Endpoint     string    `json:"endpoint"`
	Status       int16     `json:"status"`
	Requests     int64     `json:"requests"`
	Billable     int64     `json:"billable"`
	LatencyUsSum int64     `json:"latency_us_sum"`
}

type exportedAudit struct {
	ID          int64           `json:"id"`
	At          time.Time       `json:"at"`
	Action      string          `json:"action"`
	ActorKind   string          `json:"actor_kind"`
	ActorUserID *uuid.UUID      `json:"actor_user_id"`
	TargetKind  string          `json:"target_kind"`
	TargetID    string          `json:"target_id"`
	IP          string          `json:"ip"`
	UserAgent   string          `json:"user_agent"`
	Detail      json.RawMessage `json:"detail"`
}

func (s *Service) export(ctx context.Context, z *zip.Writer, u dbq.User, mems []dbq.MembershipListForUserRow) error {
	now := s.now().UTC()
	if err := writeJSON(z, "account.json", now, exportedAccount{
		ID: u.ID, Email: u.Email, CreatedAt: u.CreatedAt.UTC(), EmailVerifiedAt: u.EmailVerifiedAt, ExportedAt: now,
	}); err != nil {
		return err
	}
	wss := make([]exportedWorkspace, len(mems))
	for i, m := range mems {
		wss[i] = exportedWorkspace{ID: m.ID, Name: m.Name, Plan: m.Plan, Role: m.Role, SuspendedAt: m.SuspendedAt, CreatedAt: m.CreatedAt.UTC()}
	}
	if err := writeJSON(z, "workspaces.json", now, wss); err != nil {
		return err
	}
	for _, m := range mems {
		if m.SuspendedAt != nil {
			continue
		}
		if err := s.exportWorkspace(ctx, z, now, u.ID, m); err != nil {
			return err
		}
	}
	return writeNDJSON(z, "audit_log.ndjson", now, func(_ io.Writer, enc *json.Encoder) error {
		return encodeAudit(enc, func(after int64) ([]dbq.ExportAuditPageRow, error) {
			rows, err := s.q.ExportAccountAuditPage(ctx, dbq.ExportAccountAuditPageParams{AfterID: after, UserID: &u.ID, UserText: u.ID.String(), Lim: exportRows})
			out := make([]dbq.ExportAuditPageRow, len(rows))
			for i, r := range rows {
				out[i] = dbq.ExportAuditPageRow(r)
			}
			return out, err
		})
	})
}

func (s *Service) exportWorkspace(ctx context.Context, z *zip.Writer, now time.Time, userID uuid.UUID, m dbq.MembershipListForUserRow) error {
	dir := "workspaces/" + m.ID.String() + "/"
	manages := workspace.Allows(m.Role, workspace.RoleAdmin)
	if err := writeNDJSON(z, dir+"documents.ndjson", now, func(w io.Writer, _ *json.Encoder) error {
		return WriteDocuments(ctx, s.docs, m.ID, w, true)
	}); err != nil {
		return err
	}
	keys, err := s.q.ExportAPIKeys(ctx, dbq.ExportAPIKeysParams{WorkspaceID: m.ID, AllKeys: manages, UserID: &userID})
	if err != nil {
		return err
	}
	out := make([]exportedKey, len(keys))
	for i, k := range keys {
		out[i] = exportedKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, Kind: k.Kind, CreatedBy: k.CreatedBy,
			CreatedAt: k.CreatedAt.UTC(), LastUsedAt: k.LastUsedAt, ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt}
	}
	if err := writeJSON(z, dir+"api_keys.json", now, out); err != nil {
		return err
	}
	if err := writeNDJSON(z, dir+"usage_daily.ndjson", now, func(_ io.Writer, enc *json.Encoder) error {
		p := dbq.ExportUsageDailyPageParams{WorkspaceID: m.ID, AfterDay: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), AfterStatus: -1, Lim: exportRows}
		for {
			rows, err := s.q.ExportUsageDailyPage(ctx, p)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if err := enc.Encode(exportedUsage{Day: r.Day.Format(time.DateOnly), KeyID: r.KeyID, Endpoint: r.Endpoint, Status: r.Status,
					Requests: r.Requests, Billable: r.Billable, LatencyUsSum: r.LatencyUsSum}); err != nil {
					return err
				}
			}
			if len(rows) < exportRows {
				return nil
			}
			last := rows[len(rows)-1]
			p.AfterDay, p.AfterKey, p.AfterEndpoint, p.AfterStatus = last.Day, last.KeyID, last.Endpoint, last.Status
		}
	}); err != nil {
		return err
	}
	return writeNDJSON(z, dir+"audit_log.ndjson", now, func(_ io.Writer, enc *json.Encoder) error {
		ws := m.ID
		return encodeAudit(enc, func(after int64) ([]dbq.ExportAuditPageRow, error) {
			return s.q.ExportAuditPage(ctx, dbq.ExportAuditPageParams{WorkspaceID: &ws, AfterID: after, AllRows: manages, UserID: &userID, Lim: exportRows})
		})
	})
}

// encodeAudit encodes audit entries page by page, each page the exportRows entries
// after the last id of the one before, until a short page.
func encodeAudit(enc *json.Encoder, page func(after int64) ([]dbq.ExportAuditPageRow, error)) error {
	var after int64
	for {
		rows, err := page(after)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := enc.Encode(toExportedAudit(r)); err != nil {
				return err
			}
		}
		if len(rows) < exportRows {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

func toExportedAudit(r dbq.ExportAuditPageRow) exportedAudit {
	detail := json.RawMessage(r.Detail)
	if len(detail) == 0 {
		detail = json.RawMessage("{}")
	}
	return exportedAudit{ID: r.ID, At: r.CreatedAt.UTC(), Action: r.Action, ActorKind: r.ActorKind, ActorUserID: r.ActorUserID,
		TargetKind: r.TargetKind, TargetID: r.TargetID, IP: r.Ip, UserAgent: r.UserAgent, Detail: detail}
}

// create starts a compressed file of the zip.
func create(z *zip.Writer, name string, now time.Time) (io.Writer, error) {
	return z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
}

func writeJSON(z *zip.Writer, name string, now time.Time, v any) error {
	f, err := create(z, name, now)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeNDJSON writes one file of JSON lines through a buffer, so the compressor
// sees large writes rather than one per line.
func writeNDJSON(z *zip.Writer, name string, now time.Time, fill func(io.Writer, *json.Encoder) error) error {
	f, err := create(z, name, now)
	if err != nil {
		return err
	}
	b := bufio.NewWriterSize(f, 64<<10)
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := fill(b, enc); err != nil {
		return err
	}
	return b.Flush()
}
