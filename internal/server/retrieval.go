package server

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

// newRetrieval picks the retrieval service's embedders and vector index from the
// configuration: the local embedder and builtin index unless OpenAI and Pinecone
// are configured.
func newRetrieval(cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) *retrieval.Service {
	return retrieval.NewService(retrieval.Options{
		Pool:       pool,
		Plans:      cfg.Plans,
		Local:      retrieval.NewLocalEmbedder(cfg.Retrieval.LocalEmbeddingDim),
		CacheBytes: cfg.Retrieval.VectorCacheBytes,
		Log:        log,
	})
}
