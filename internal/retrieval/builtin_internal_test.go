package retrieval

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestBuiltinIndexDropsAWorkspacesOldModel(t *testing.T) {
	b := NewBuiltinIndex(nil, 0)
	ws, other := uuid.New(), uuid.New()
	has := func(w uuid.UUID, model string) bool {
		_, ok := b.entries[cacheKey{w, model}]
		return ok
	}
	old := b.entry(cacheKey{ws, "old"})
	neighbour := b.entry(cacheKey{other, "old"})
	b.entry(cacheKey{ws, "new"})
	if !has(ws, "old") {
		t.Fatal("a model searched a moment ago was dropped")
	}
	old.used = time.Now().Add(-2 * staleModelAfter)
	neighbour.used = old.used
	b.entry(cacheKey{ws, "new"})
	if has(ws, "old") {
		t.Fatal("the workspace's model unused for longer than staleModelAfter is still cached")
	}
	if !has(other, "old") {
		t.Fatal("another workspace's entry was dropped")
	}
	if len(b.models[ws]) != 1 || b.lru.Len() != 2 {
		t.Fatalf("bookkeeping: %d models for the workspace, %d entries in the LRU", len(b.models[ws]), b.lru.Len())
	}
}
