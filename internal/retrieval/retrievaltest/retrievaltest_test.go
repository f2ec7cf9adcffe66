package retrievaltest_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone/pineconetest"
	"github.com/cairn-dev/cairn/internal/retrieval/retrievaltest"
)

func TestBuiltinIndex(t *testing.T) {
	retrievaltest.Run(t, nil)
}

func TestPineconeIndex(t *testing.T) {
	retrievaltest.Run(t, func(t *testing.T, _ *pgxpool.Pool) retrieval.VectorIndex {
		srv := pineconetest.Start(t, "pc-test-key")
		idx, err := pinecone.New(config.Pinecone{APIKey: "pc-test-key", IndexHost: srv.Host()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idx.Close() })
		return idx
	})
}
