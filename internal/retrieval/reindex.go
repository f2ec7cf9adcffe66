package retrieval

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// reindexBatch is how many vectors go to the index per Upsert call.
const reindexBatch = 500

// Reindex writes every vector the workspace has in PostgreSQL to the vector index
// again, for a Pinecone namespace that was lost, emptied or created afresh. It
// returns how many vectors were written. Vectors of chunks that no longer exist
// are not removed from the index; searches never return them.
func (s *Service) Reindex(ctx context.Context, workspaceID uuid.UUID) (int, error) {
	models, err := s.q.ChunkVectorModels(ctx, workspaceID)
	if err != nil {
		return 0, fmt.Errorf("retrieval: reindex: %w", err)
	}
	n := 0
	for _, model := range models {
		rows, err := s.q.ChunkVectorLoad(ctx, dbq.ChunkVectorLoadParams{WorkspaceID: workspaceID, Model: model, AfterVersion: 0})
		if err != nil {
			return n, fmt.Errorf("retrieval: reindex %s: %w", model, err)
		}
		metas := map[string]map[string]any{}
		for start := 0; start < len(rows); start += reindexBatch {
			batch := rows[start:min(start+reindexBatch, len(rows))]
			vs := make([]Vector, len(batch))
			for i, r := range batch {
				meta, ok := metas[r.DocumentID]
				if !ok {
					meta = decodeMetadata(r.Metadata)
					metas[r.DocumentID] = meta
				}
				values := make([]float32, vectorDim(r.Embedding))
				decodeVector(r.Embedding, values)
				vs[i] = Vector{ID: indexID(r.ChunkID, model), DocumentID: r.DocumentID, Values: values, Metadata: meta}
			}
			if err := s.index.Upsert(ctx, workspaceID, model, vs); err != nil {
				return n, dependency(err, "vector index")
			}
			n += len(vs)
		}
	}
	return n, nil
}
