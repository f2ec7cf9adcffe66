package retrieval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/secretbox"
)

// OpenAI reaches OpenAI-compatible models with a key: the server's own (apiKey
// "") or one a caller brought for a single request.
type OpenAI interface {
	Embedder(apiKey string) Embedder
	Chat(apiKey string) ChatModel
}

// CustomEmbedders makes the embedder of a workspace's own OpenAI-compatible
// endpoint: its base URL, model, dimensions (0: the model's own) and key; name is
// the model its vectors are stored under.
type CustomEmbedders func(baseURL, model string, dims int, apiKey, name string) Embedder

// Options configure a Service.
type Options struct {
	Pool  *pgxpool.Pool
	Plans plan.Table
	// Local is the embedder used when no OpenAI key is available.
	Local Embedder
	// OpenAI, when set, serves callers that send their own key, and everyone when
	// ServerKey is true.
	OpenAI    OpenAI
	ServerKey bool
	// Index holds the vectors; the builtin index when nil.
	Index VectorIndex
	// CacheBytes bounds the builtin index's memory (DefaultCacheBytes when zero).
	CacheBytes int64
	Log        *slog.Logger
	// Queue runs re-embedding and cleanup jobs; the service registers its workers on
	// it, so it must not be initialised yet. Without it no embedder can be chosen
	// that needs re-embedding.
	Queue *jobs.Queue
	// Box seals workspaces' own endpoint keys; without a key none can be stored.
	Box *secretbox.Box
	// Custom reaches workspaces' own endpoints; nil refuses them.
	Custom CustomEmbedders
	// QueryCache, when set, shares query embeddings across replicas (Redis).
	QueryCache QueryCache
}

// Caller is who a retrieval call acts for.
type Caller struct {
	WorkspaceID uuid.UUID
	Plan        plan.ID
	// OpenAIKey is the caller's own key from the OpenAI-API-Key header, used for this
	// call only; never stored or logged.
	OpenAIKey string
	// Quota, when set, counts the call against the workspace's monthly quota. The
	// service takes it once the call has passed every cheap check (validation, the
	// plan's caps) and before any expensive step (chunking, embedding, a model
	// call), so a refused call costs almost nothing. nil: the call is not metered.
	Quota Quota
}

// Quota is a billable call's claim on its workspace's monthly quota.
type Quota interface {
	// Take counts the call; an error (quota_exceeded, unavailable) refuses it.
	// Only the first call counts.
	Take(ctx context.Context) error
}

// take counts the call against its quota, if it has one.
func (c Caller) take(ctx context.Context) error {
	if c.Quota == nil {
		return nil
	}
	return c.Quota.Take(ctx)
}

// Service stores documents and searches and answers from them.
type Service struct {
	pool      *pgxpool.Pool
	q         *dbq.Queries
	plans     plan.Table
	local     Embedder
	openai    OpenAI
	serverKey bool
	index     VectorIndex
	log       *slog.Logger
	chunker   Chunker
	queue     *jobs.Queue
	box       *secretbox.Box
	custom    CustomEmbedders
	queries   QueryCache // nil: every query is embedded
	statuses  sync.Map   // workspace id → cachedStatus, for CachedEmbedder
}

// NewService returns a Service.
func NewService(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Local == nil {
		o.Local = NewLocalEmbedder(DefaultLocalDim)
	}
	if o.Index == nil {
		o.Index = NewBuiltinIndex(o.Pool, o.CacheBytes)
	}
	if o.Box == nil {
		o.Box = &secretbox.Box{}
	}
	s := &Service{
		pool: o.Pool, q: dbq.New(o.Pool), plans: o.Plans, local: o.Local, openai: o.OpenAI,
		serverKey: o.ServerKey && o.OpenAI != nil, index: o.Index, log: o.Log, chunker: DefaultChunker,
		queue: o.Queue, box: o.Box, custom: o.Custom, queries: o.QueryCache,
	}
	if o.Queue != nil {
		jobs.AddWorker(o.Queue, &reembedWorker{s: s})
		jobs.AddWorker(o.Queue, &cleanupWorker{s: s})
		jobs.AddWorker(o.Queue, &dropWorkspaceWorker{s: s})
	}
	return s
}

// Index returns the vector index the service writes to.
func (s *Service) Index() VectorIndex { return s.index }

// embedder is the server's default for a workspace that has chosen none: OpenAI
// when the caller brought a key or the server has one, the local embedder
// otherwise. embedderFor applies a workspace's choice.
func (s *Service) embedder(c Caller) Embedder {
	switch {
	case s.openai != nil && c.OpenAIKey != "":
		return s.openai.Embedder(c.OpenAIKey)
	case s.serverKey:
		return s.openai.Embedder("")
	}
	return s.local
}

// chat picks the caller's chat model, or nil for extractive answers: the caller's
// own key always works; the server's only on plans that include it.
func (s *Service) chat(c Caller) ChatModel {
	switch {
	case s.openai != nil && c.OpenAIKey != "":
		return s.openai.Chat(c.OpenAIKey)
	case s.serverKey && s.plans.Get(c.Plan).ServerOpenAIKey:
		return s.openai.Chat("")
	}
	return nil
}

// DocumentCount returns how many documents the workspace stores.
func (s *Service) DocumentCount(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	n, err := s.q.DocumentCount(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("retrieval: count documents: %w", err)
	}
	return int(n), nil
}

// dependency turns an embedder's, index's or model's failure into a 503 asking the
// caller to retry, unless it already says what went wrong.
func dependency(err error, what string) error {
	if err == nil || apperr.As(err) != nil || errors.Is(err, context.Canceled) {
		return err
	}
	return apperr.Unavailablef(err, 5, "The %s is unavailable; nothing was changed. Retry shortly.", what)
}
