// Package retrieval stores documents as chunks, embeds them, and finds and answers
// from them: keyword (PostgreSQL full text), semantic (vectors) and hybrid search.
package retrieval

import (
	"context"

	"github.com/google/uuid"
)

// Embedder turns texts into vectors of one model.
type Embedder interface {
	// Model names the model that made the vectors; it is stored with every vector so a
	// search never mixes models.
	Model() string
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Vector is one chunk's embedding as a vector index stores it.
type Vector struct {
	// ID identifies the chunk inside its workspace; stable across replicas.
	ID         string
	DocumentID string
	Values     []float32
	// Metadata is the document's metadata (string, float64 or bool values), for filters.
	Metadata map[string]any
}

// Filter restricts a search to documents whose metadata matches every key: the
// value must be one of the listed ones (equality is a one-element list).
type Filter map[string][]any

// Match is one vector index hit.
type Match struct {
	ID         string
	DocumentID string
	Score      float32 // cosine similarity, higher is closer
}

// VectorIndex stores and searches chunk vectors. PostgreSQL keeps every vector too,
// so an index can always be rebuilt from it.
type VectorIndex interface {
	// Upsert adds or replaces vectors of model in the workspace.
	Upsert(ctx context.Context, workspaceID uuid.UUID, model string, vs []Vector) error
	// Delete removes vectors by id from the workspace; unknown ids are ignored.
	Delete(ctx context.Context, workspaceID uuid.UUID, ids []string) error
	// Query returns up to topK vectors of model closest to q that pass f.
	Query(ctx context.Context, workspaceID uuid.UUID, model string, q []float32, topK int, f Filter) ([]Match, error)
}

// ChatMessage is one message of a chat completion.
type ChatMessage struct{ Role, Content string }

// ChatModel generates answers.
type ChatModel interface {
	Model() string
	Complete(ctx context.Context, msgs []ChatMessage) (string, error)
	Stream(ctx context.Context, msgs []ChatMessage, onDelta func(string) error) error
}

// VectorFetcher is an optional VectorIndex ability: returning stored vectors by id
// without a database round trip (the builtin index holds them in memory). Ids it
// does not hold are left out; the service reads those from PostgreSQL.
type VectorFetcher interface {
	Fetch(ctx context.Context, workspaceID uuid.UUID, model string, ids []string) (map[string][]float32, error)
}

// VectorScorer is an optional VectorIndex ability: scoring stored vectors against
// a query in place, without handing them over. Ids it does not hold are left out;
// the service scores those from PostgreSQL's vectors.
type VectorScorer interface {
	Score(ctx context.Context, workspaceID uuid.UUID, model string, q []float32, ids []string) (map[string]float32, error)
}

// QueryCache keeps query embeddings where every replica finds them (Redis), so a
// query is embedded (and the embedding service paid) once, not once per replica
// and per repeat. scope names whose vectors they are: the model, and for a
// workspace's own endpoint also the workspace. It is an optimisation only: a Get
// that fails is a miss, a Put that fails is dropped, and neither fails a search.
type QueryCache interface {
	Get(ctx context.Context, scope, text string) ([]float32, bool)
	Put(ctx context.Context, scope, text string, v []float32)
}
