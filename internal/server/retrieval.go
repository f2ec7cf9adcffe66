package server

import (
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/openai"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone"
)

// newRetrieval picks the retrieval service's embedders and vector index from the
// configuration: the local embedder and builtin index unless OpenAI and Pinecone
// are configured. Callers may always bring their own OpenAI key (OpenAI-API-Key);
// the server's own key, when set, serves everyone.
func (s *Server) newRetrieval() (*retrieval.Service, error) {
	cfg := s.cfg
	o := retrieval.Options{
		Pool:       s.pool,
		Plans:      cfg.Plans,
		Local:      retrieval.NewLocalEmbedder(cfg.Retrieval.LocalEmbeddingDim),
		OpenAI:     openai.New(cfg.OpenAI, openai.WithLogger(s.log)),
		ServerKey:  cfg.OpenAI.APIKey != "",
		CacheBytes: cfg.Retrieval.VectorCacheBytes,
		Log:        s.log,
	}
	if cfg.Pinecone.Enabled() {
		index, err := pinecone.New(cfg.Pinecone)
		if err != nil {
			return nil, err
		}
		o.Index = index
		s.closers = append(s.closers, func() { _ = index.Close() })
	}
	return retrieval.NewService(o), nil
}
