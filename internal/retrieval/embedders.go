package retrieval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// Provider is where a workspace's embeddings come from.
type Provider string

// The providers an owner or admin can choose on Settings.
const (
	// ProviderBuiltin is the local embedder: offline, lexical, free.
	ProviderBuiltin Provider = "builtin"
	// ProviderOpenAI is the server's OpenAI model, on plans that include it.
	ProviderOpenAI Provider = "openai"
	// ProviderCustom is the workspace's own OpenAI-compatible endpoint and key.
	ProviderCustom Provider = "custom"
)

// EmbedderChoice is a choice of embedder for a workspace.
type EmbedderChoice struct {
	Provider Provider
	// BaseURL, Model, Dimensions (0: the model's own) and APIKey name a custom
	// endpoint. An empty APIKey keeps the stored key of the same endpoint.
	BaseURL    string
	Model      string
	Dimensions int
	APIKey     string
}

// EmbedderStatus is a workspace's embedder as Settings, the Documents page and
// GET /v1/me show it. It never holds the key.
type EmbedderStatus struct {
	Provider Provider
	// Model is the name its vectors are stored under, e.g. cairn-local-v2-3072.
	Model string
	// A custom endpoint's URL, model and dimensions, and whether its key is stored.
	BaseURL       string
	EndpointModel string
	Dimensions    int
	KeyStored     bool
	// Pending is the choice being re-embedded to, nil when none.
	Pending *EmbedderSwitch
}

// Choices reports what a workspace may choose on this server: the server's OpenAI
// model (it has a key), and its own endpoint (it can seal keys).
func (s *Service) Choices() (serverOpenAI, ownEndpoint bool) {
	return s.serverKey, s.custom != nil && s.box.Enabled()
}

// EmbedderSwitch is a re-embedding in progress: Done of Total chunks have a vector
// of the new model; Error says why the last attempt failed, if it did.
type EmbedderSwitch struct {
	Provider Provider
	Model    string
	BaseURL  string
	Done     int64
	Total    int64
	Error    string
}

// Embedder returns the workspace's embedder and any re-embedding in progress.
func (s *Service) Embedder(ctx context.Context, c Caller) (EmbedderStatus, error) {
	rows, err := s.q.EmbedderGet(ctx, c.WorkspaceID)
	if err != nil {
		return EmbedderStatus{}, fmt.Errorf("retrieval: embedder: %w", err)
	}
	def := s.embedder(Caller{WorkspaceID: c.WorkspaceID, Plan: c.Plan})
	st := EmbedderStatus{Provider: ProviderBuiltin, Model: def.Model()}
	if _, ok := def.(*LocalEmbedder); !ok {
		st.Provider = ProviderOpenAI
	}
	for _, r := range rows {
		switch r.Slot {
		case "active":
			st.Provider, st.Model, st.BaseURL = Provider(r.Provider), r.VectorModel, r.BaseUrl
			st.EndpointModel, st.Dimensions, st.KeyStored = r.Model, int(r.Dimensions), r.ApiKey != nil
		case "pending":
			st.Pending = &EmbedderSwitch{
				Provider: Provider(r.Provider), Model: r.VectorModel, BaseURL: r.BaseUrl,
				Done: r.Done, Total: r.Total, Error: r.Error,
			}
		}
	}
	return st, nil
}

// Equal reports whether two statuses say the same.
func (a EmbedderStatus) Equal(b EmbedderStatus) bool {
	if a.Provider != b.Provider || a.Model != b.Model || a.BaseURL != b.BaseURL || a.EndpointModel != b.EndpointModel ||
		a.Dimensions != b.Dimensions || a.KeyStored != b.KeyStored || (a.Pending == nil) != (b.Pending == nil) {
		return false
	}
	return a.Pending == nil || *a.Pending == *b.Pending
}

// embedderCacheFor is how long CachedEmbedder keeps a workspace's status.
const embedderCacheFor = 2 * time.Second

type cachedStatus struct {
	st EmbedderStatus
	at time.Time
}

// CachedEmbedder is Embedder as of at most two seconds ago, read from PostgreSQL
// at most once per workspace in that time: for GET /v1/me, which the extension
// calls often and which must stay cheap.
func (s *Service) CachedEmbedder(ctx context.Context, c Caller) (EmbedderStatus, error) {
	if v, ok := s.statuses.Load(c.WorkspaceID); ok && time.Since(v.(cachedStatus).at) < embedderCacheFor {
		return v.(cachedStatus).st, nil
	}
	st, err := s.Embedder(ctx, c)
	if err != nil {
		return st, err
	}
	s.statuses.Store(c.WorkspaceID, cachedStatus{st, time.Now()})
	return st, nil
}

// ChooseEmbedder makes choice the workspace's embedder. A workspace without chunks,
// or a choice whose vectors it already has (a new key for the same endpoint),
// switches at once; otherwise a re-embedding job starts, inserted in the same
// transaction, and searches keep the current vectors until the new set is
// complete. It returns invalid (naming the field) for a choice that cannot work,
// and forbidden for the server's OpenAI model on a plan without it.
func (s *Service) ChooseEmbedder(ctx context.Context, c Caller, choice EmbedderChoice) error {
	row, err := s.validateChoice(ctx, c, choice)
	if err != nil {
		return err
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		st, err := q.RetrievalStateBump(ctx, c.WorkspaceID) // serialises with writes and the switch
		if err != nil {
			return err
		}
		current := s.embedder(Caller{WorkspaceID: c.WorkspaceID, Plan: c.Plan}).Model()
		if a, err := q.EmbedderActive(ctx, c.WorkspaceID); err == nil {
			current = a.VectorModel
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		counts, err := q.ChunkVectorCount(ctx, dbq.ChunkVectorCountParams{WorkspaceID: c.WorkspaceID, Model: row.VectorModel})
		if err != nil {
			return err
		}
		if row.VectorModel == current || st.Chunks == 0 || counts.Done == counts.Total {
			if err := q.EmbedderDelete(ctx, dbq.EmbedderDeleteParams{WorkspaceID: c.WorkspaceID, Slots: []string{"active", "pending"}}); err != nil {
				return err
			}
			if err := q.EmbedderSetActive(ctx, dbq.EmbedderSetActiveParams(row)); err != nil {
				return err
			}
			if row.VectorModel != current && st.Chunks > 0 {
				if err := s.enqueueCleanup(ctx, tx, c.WorkspaceID, current); err != nil {
					return err
				}
			}
		} else {
			p := dbq.EmbedderSetPendingParams{
				WorkspaceID: row.WorkspaceID, Provider: row.Provider, BaseUrl: row.BaseUrl, Model: row.Model,
				Dimensions: row.Dimensions, ApiKey: row.ApiKey, VectorModel: row.VectorModel, Total: counts.Total,
			}
			if err := q.EmbedderSetPending(ctx, p); err != nil {
				return err
			}
			if s.queue == nil {
				return errors.New("retrieval: no job queue to re-embed with")
			}
			if _, err := s.queue.InsertTx(ctx, tx, ReembedArgs{WorkspaceID: c.WorkspaceID, Model: row.VectorModel}, nil); err != nil {
				return err
			}
		}
		return audit.Record(ctx, q, audit.Entry{
			WorkspaceID: c.WorkspaceID, Action: audit.SettingsChanged, TargetKind: "embedder", TargetID: row.VectorModel,
			Detail: map[string]any{"provider": row.Provider, "model": row.VectorModel},
		})
	})
}

// validateChoice checks a choice and returns the row that stores it, with the key
// sealed.
func (s *Service) validateChoice(ctx context.Context, c Caller, ch EmbedderChoice) (dbq.EmbedderSetActiveParams, error) {
	row := dbq.EmbedderSetActiveParams{WorkspaceID: c.WorkspaceID, Provider: string(ch.Provider)}
	switch ch.Provider {
	case ProviderBuiltin:
		row.VectorModel = s.local.Model()
	case ProviderOpenAI:
		if s.openai == nil || !s.serverKey {
			return row, apperr.Field("provider", "this server has no OpenAI key; choose the built-in embedder or your own endpoint")
		}
		if !s.plans.Get(c.Plan).ServerOpenAIKey {
			return row, apperr.New(apperr.Forbidden, "The %s plan does not include the server's OpenAI model; upgrade, or use your own endpoint.", s.plans.Get(c.Plan).Name)
		}
		row.VectorModel = s.openai.Embedder("").Model()
	case ProviderCustom:
		if s.custom == nil {
			return row, apperr.Field("provider", "this server cannot reach OpenAI-compatible endpoints")
		}
		u, err := url.Parse(strings.TrimSpace(ch.BaseURL))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return row, apperr.Field("base_url", "must be an http(s) URL such as https://api.openai.com/v1")
		}
		if !s.box.Enabled() {
			return row, apperr.Field("api_key", "cannot be stored: the server has no ENCRYPTION_KEY set")
		}
		model := strings.TrimSpace(ch.Model)
		if model == "" || len(model) > 200 {
			return row, apperr.Field("model", "is required (at most 200 characters), e.g. text-embedding-3-small")
		}
		if ch.Dimensions < 0 || ch.Dimensions > 8192 {
			return row, apperr.Field("dimensions", "must be between 0 (the model's own) and 8192")
		}
		row.BaseUrl, row.Model, row.Dimensions = strings.TrimRight(u.String(), "/"), model, int32(ch.Dimensions)
		row.VectorModel = customModel(row.BaseUrl, model, ch.Dimensions)
		key := ch.APIKey
		if key == "" {
			// The same endpoint keeps its stored key.
			rows, err := s.q.EmbedderGet(ctx, c.WorkspaceID)
			if err != nil {
				return row, fmt.Errorf("retrieval: embedder: %w", err)
			}
			for _, r := range rows {
				if r.VectorModel == row.VectorModel && r.ApiKey != nil {
					row.ApiKey = r.ApiKey
				}
			}
			if row.ApiKey == nil {
				return row, apperr.Field("api_key", "is required for a new endpoint")
			}
			break
		}
		if len(key) > 1000 || strings.ContainsAny(key, "\r\n") {
			return row, apperr.Field("api_key", "is not an API key")
		}
		sealed, err := s.box.Seal([]byte(key), c.WorkspaceID[:])
		if err != nil {
			return row, fmt.Errorf("retrieval: seal key: %w", err)
		}
		row.ApiKey = sealed
	default:
		return row, apperr.Field("provider", "must be builtin, openai or custom")
	}
	return row, nil
}

// customModel names a custom endpoint's vectors: its model and dimensions, and a
// digest of its URL so that two endpoints serving the same model name never mix.
func customModel(baseURL, model string, dims int) string {
	sum := sha256.Sum256([]byte(baseURL))
	m := "custom/" + model
	if dims > 0 {
		m += "@" + strconv.Itoa(dims)
	}
	return m + "#" + hex.EncodeToString(sum[:4])
}

// embedderFor returns the embedder the caller's workspace uses now: its active
// choice, or the server's default when it has made none.
func (s *Service) embedderFor(ctx context.Context, c Caller) (Embedder, error) {
	row, err := s.q.EmbedderActive(ctx, c.WorkspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.embedder(c), nil
	}
	if err != nil {
		return nil, fmt.Errorf("retrieval: embedder: %w", err)
	}
	return s.embedderOf(ctx, c, row)
}

// embedderOf builds the embedder a stored row describes.
func (s *Service) embedderOf(ctx context.Context, c Caller, r dbq.WorkspaceEmbedder) (Embedder, error) {
	switch Provider(r.Provider) {
	case ProviderOpenAI:
		if s.openai == nil {
			return nil, apperr.Unavailablef(errors.New("no OpenAI client"), 30, "The workspace's embedding service is unavailable.")
		}
		return s.openai.Embedder(c.OpenAIKey), nil // the caller's own key pays, when given
	case ProviderCustom:
		key, stale, err := s.box.Open(r.ApiKey, c.WorkspaceID[:])
		if err != nil {
			// A key sealed under a key the server no longer has: the operator's to fix.
			s.log.Error("retrieval: cannot open the workspace's endpoint key; check ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS", "workspace_id", c.WorkspaceID, "err", err)
			return nil, apperr.Unavailablef(err, 60, "The workspace's embedding endpoint key cannot be read; ask the server's operator.")
		}
		if stale {
			s.reseal(ctx, c.WorkspaceID, r.Slot, key)
		}
		return s.custom(r.BaseUrl, r.Model, int(r.Dimensions), string(key), r.VectorModel), nil
	}
	return s.local, nil
}

// reseal seals a key opened with ENCRYPTION_KEY_PREVIOUS under ENCRYPTION_KEY, so
// a rotation finishes as keys are used. A failure only leaves it for next time.
func (s *Service) reseal(ctx context.Context, workspaceID uuid.UUID, slot string, key []byte) {
	sealed, err := s.box.Seal(key, workspaceID[:])
	if err == nil {
		err = s.q.EmbedderResealKey(ctx, dbq.EmbedderResealKeyParams{WorkspaceID: workspaceID, Slot: slot, ApiKey: sealed})
	}
	if err != nil {
		s.log.Warn("retrieval: could not reseal an endpoint key under the current ENCRYPTION_KEY", "workspace_id", workspaceID, "err", err)
	}
}

// indexID is a chunk's vector id in the vector index. The local embedder's vectors
// use the chunk id, as they always have; other models' ids name the model too,
// because a namespace holds a workspace's vectors of two models while it is
// re-embedded and the same id would overwrite.
func indexID(chunkID int64, model string) string {
	id := strconv.FormatInt(chunkID, 10)
	if strings.HasPrefix(model, "cairn-local-") {
		return id
	}
	sum := sha256.Sum256([]byte(model))
	return id + "#" + hex.EncodeToString(sum[:4])
}

// chunkOfIndexID is the chunk an index id names; ok is false for an id of no chunk.
func chunkOfIndexID(id string) (int64, bool) {
	id, _, _ = strings.Cut(id, "#")
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil
}

// indexIDs are every id the chunks' vectors may have in the index: one per model
// the workspace uses or is switching to, and the server's defaults.
func (s *Service) indexIDs(ctx context.Context, workspaceID uuid.UUID, chunkIDs []int64) []string {
	models := map[string]bool{s.local.Model(): true}
	if s.openai != nil {
		models[s.openai.Embedder("").Model()] = true
	}
	if rows, err := s.q.EmbedderGet(ctx, workspaceID); err == nil {
		for _, r := range rows {
			models[r.VectorModel] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range chunkIDs {
		for m := range models {
			if x := indexID(id, m); !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	return out
}
