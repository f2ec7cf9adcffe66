package server

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/openai"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone"
	"github.com/cairn-dev/cairn/internal/secretbox"
	"github.com/cairn-dev/cairn/internal/telemetry"
)

// NewRetrieval builds the retrieval service from the configuration: the local
// embedder and builtin index unless OpenAI and Pinecone are configured. Callers may
// always bring their own OpenAI key (OpenAI-API-Key); the server's own key, when
// set, serves everyone. queries, when set, shares query embeddings across
// replicas; tel, which may be nil, records the calls to OpenAI and Pinecone.
// close releases the vector index's connection.
func NewRetrieval(cfg config.Config, pool *pgxpool.Pool, queue *jobs.Queue, queries retrieval.QueryCache, log *slog.Logger, tel *telemetry.Telemetry) (svc *retrieval.Service, close func(), err error) {
	box, err := secretbox.New(cfg.EncryptionKey, cfg.EncryptionKeyPrevious)
	if err != nil {
		return nil, nil, err
	}
	oa := openai.New(cfg.OpenAI, openai.WithLogger(log), openai.WithPrivateEndpoints(cfg.Retrieval.CustomEmbedderAllowPrivate), openai.WithTelemetry(tel))
	o := retrieval.Options{
		Pool:       pool,
		Plans:      cfg.Plans,
		Local:      retrieval.NewLocalEmbedder(cfg.Retrieval.LocalEmbeddingDim),
		OpenAI:     oa,
		ServerKey:  cfg.OpenAI.APIKey != "",
		CacheBytes: cfg.Retrieval.VectorCacheBytes,
		Log:        log,
		Queue:      queue,
		Box:        box,
		QueryCache: queries,
		Custom: func(baseURL, model string, dims int, apiKey, name string) retrieval.Embedder {
			return oa.Endpoint(baseURL, model, dims, apiKey, name)
		},
	}
	close = func() {}
	if cfg.Pinecone.Enabled() {
		index, err := pinecone.New(cfg.Pinecone, pinecone.WithTelemetry(tel))
		if err != nil {
			return nil, nil, err
		}
		o.Index = index
		close = func() { _ = index.Close() }
	}
	return retrieval.NewService(o), close, nil
}
