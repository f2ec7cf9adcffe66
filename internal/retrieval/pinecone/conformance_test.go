package pinecone_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/retrieval"
)

// dims is the vector length of the conformance suite; a Pinecone Local index for the
// contract test must be created with it (and the cosine metric).
const dims = 8

// runConformance checks what the retrieval service relies on from a vector index:
// replacing and deleting leave no stale vector, filters and models narrow a search
// exactly, and workspaces never see each other. Every subtest uses fresh workspaces,
// so the suite can run against a shared index.
func runConformance(t *testing.T, index retrieval.VectorIndex) {
	ctx := context.Background()
	const model = "test-model"

	t.Run("QueryFindsTheClosestFirst", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "1", DocumentID: "doc-a", Values: axis(0)},
			{ID: "2", DocumentID: "doc-b", Values: mix(0, 1, 0.5)},
			{ID: "3", DocumentID: "doc-c", Values: axis(1)},
		}))
		got, err := index.Query(ctx, ws, model, axis(0), 10, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"1", "2", "3"}, ids(got))
		require.Equal(t, "doc-a", got[0].DocumentID)
		require.Equal(t, "doc-b", got[1].DocumentID)
		require.InDelta(t, 1, got[0].Score, 1e-4)
		require.InDelta(t, cosine(axis(0), mix(0, 1, 0.5)), got[1].Score, 1e-4)
		require.InDelta(t, 0, got[2].Score, 1e-4)

		top, err := index.Query(ctx, ws, model, axis(0), 2, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"1", "2"}, ids(top))
	})

	t.Run("UpsertSameIDReplacesValuesAndMetadata", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "1", DocumentID: "doc", Values: axis(0), Metadata: map[string]any{"lang": "en"}},
		}))
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "1", DocumentID: "doc", Values: axis(1), Metadata: map[string]any{"lang": "fr"}},
		}))
		got, err := index.Query(ctx, ws, model, axis(1), 10, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, ids(got), "one vector, not two")
		require.InDelta(t, 1, got[0].Score, 1e-4, "new values")
		got, err = index.Query(ctx, ws, model, axis(1), 10, retrieval.Filter{"lang": {"en"}})
		require.NoError(t, err)
		require.Empty(t, got, "old metadata gone")
		got, err = index.Query(ctx, ws, model, axis(1), 10, retrieval.Filter{"lang": {"fr"}})
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, ids(got))
	})

	t.Run("ReplacedDocumentLeavesNoStaleChunk", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "10", DocumentID: "doc", Values: axis(0)},
			{ID: "11", DocumentID: "doc", Values: axis(1)},
			{ID: "12", DocumentID: "doc", Values: axis(2)},
		}))
		// The service's replace: the new version's chunks, then the old ones deleted.
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "13", DocumentID: "doc", Values: axis(3)},
			{ID: "14", DocumentID: "doc", Values: axis(4)},
		}))
		require.NoError(t, index.Delete(ctx, ws, []string{"10", "11", "12"}))
		for d := range dims {
			got, err := index.Query(ctx, ws, model, axis(d), 10, nil)
			require.NoError(t, err)
			require.ElementsMatch(t, []string{"13", "14"}, ids(got), "query along axis %d", d)
		}
	})

	t.Run("DeleteRemovesAndIgnoresUnknownIDs", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{
			{ID: "1", DocumentID: "a", Values: axis(0)},
			{ID: "2", DocumentID: "b", Values: axis(1)},
		}))
		require.NoError(t, index.Delete(ctx, ws, []string{"1", "no-such-id"}))
		got, err := index.Query(ctx, ws, model, axis(0), 10, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"2"}, ids(got))
		require.NoError(t, index.Delete(ctx, ws, nil))
		require.NoError(t, index.Delete(ctx, uuid.New(), []string{"1"}), "a workspace never written")
	})

	t.Run("EmptyWorkspaceFindsNothing", func(t *testing.T) {
		got, err := index.Query(ctx, uuid.New(), model, axis(0), 10, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("FiltersMatchExactly", func(t *testing.T) {
		ws := uuid.New()
		metas := map[string]map[string]any{
			"en-2020-final": {"lang": "en", "year": 2020.0, "draft": false},
			"en-2021-draft": {"lang": "en", "year": 2021.0, "draft": true},
			"fr-2020-final": {"lang": "fr", "year": 2020.0, "draft": false},
			"de-none":       {"lang": "de"},
			"bare":          nil,
		}
		var vs []retrieval.Vector
		for doc, md := range metas {
			vs = append(vs, retrieval.Vector{ID: doc, DocumentID: doc, Values: mix(0, len(vs)+1, 0.1), Metadata: md})
		}
		require.NoError(t, index.Upsert(ctx, ws, model, vs))
		for _, tc := range []struct {
			name   string
			filter retrieval.Filter
			want   []string
		}{
			{"None", nil, []string{"en-2020-final", "en-2021-draft", "fr-2020-final", "de-none", "bare"}},
			{"StringEquality", retrieval.Filter{"lang": {"en"}}, []string{"en-2020-final", "en-2021-draft"}},
			{"StringIn", retrieval.Filter{"lang": {"fr", "de"}}, []string{"fr-2020-final", "de-none"}},
			{"NumberEquality", retrieval.Filter{"year": {2020.0}}, []string{"en-2020-final", "fr-2020-final"}},
			{"NumberIn", retrieval.Filter{"year": {2020.0, 2021.0}}, []string{"en-2020-final", "en-2021-draft", "fr-2020-final"}},
			{"BoolEquality", retrieval.Filter{"draft": {true}}, []string{"en-2021-draft"}},
			{"BoolIn", retrieval.Filter{"draft": {true, false}}, []string{"en-2020-final", "en-2021-draft", "fr-2020-final"}},
			{"MixedTypesIn", retrieval.Filter{"year": {"2020", 2021.0, true}}, []string{"en-2021-draft"}},
			{"KeysAreANDed", retrieval.Filter{"lang": {"en"}, "year": {2020.0}}, []string{"en-2020-final"}},
			{"TypesDoNotMix", retrieval.Filter{"year": {"2020"}}, nil},
			{"MissingKeyNeverMatches", retrieval.Filter{"year": {2020.0, 2021.0}, "lang": {"de"}}, nil},
			{"NoAllowedValueMatchesNothing", retrieval.Filter{"lang": {}}, nil},
			{"UnknownKey", retrieval.Filter{"author": {"x"}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := index.Query(ctx, ws, model, axis(0), 10, tc.filter)
				require.NoError(t, err)
				require.ElementsMatch(t, tc.want, ids(got))
			})
		}
	})

	t.Run("MetadataNamedLikeCairnsOwnKeysStaysTheDocuments", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, model, []retrieval.Vector{{
			ID: "1", DocumentID: "real-doc", Values: axis(0),
			Metadata: map[string]any{"document_id": "fake-doc", "model": "fake-model"},
		}}))
		got, err := index.Query(ctx, ws, model, axis(0), 10, retrieval.Filter{"model": {"fake-model"}})
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, ids(got), "the document's own 'model' key filters")
		require.Equal(t, "real-doc", got[0].DocumentID)
		got, err = index.Query(ctx, ws, "fake-model", axis(0), 10, nil)
		require.NoError(t, err)
		require.Empty(t, got, "and never stands for the embedding model")
	})

	t.Run("QueriesNeverMixModels", func(t *testing.T) {
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, "model-a", []retrieval.Vector{{ID: "a1", DocumentID: "d", Values: axis(0)}}))
		require.NoError(t, index.Upsert(ctx, ws, "model-b", []retrieval.Vector{{ID: "b1", DocumentID: "d", Values: axis(0)}}))
		got, err := index.Query(ctx, ws, "model-a", axis(0), 10, nil)
		require.NoError(t, err)
		require.Equal(t, []string{"a1"}, ids(got))
		got, err = index.Query(ctx, ws, "model-b", axis(0), 10, retrieval.Filter{})
		require.NoError(t, err)
		require.Equal(t, []string{"b1"}, ids(got))
	})

	t.Run("WorkspacesNeverMeet", func(t *testing.T) {
		ws1, ws2 := uuid.New(), uuid.New()
		require.NoError(t, index.Upsert(ctx, ws1, model, []retrieval.Vector{{ID: "1", DocumentID: "one", Values: axis(0)}}))
		require.NoError(t, index.Upsert(ctx, ws2, model, []retrieval.Vector{{ID: "1", DocumentID: "two", Values: axis(0)}}))
		require.NoError(t, index.Delete(ctx, ws1, []string{"1"}))
		got, err := index.Query(ctx, ws2, model, axis(0), 10, nil)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "two", got[0].DocumentID, "same id, other workspace, untouched")
		got, err = index.Query(ctx, ws1, model, axis(0), 10, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("ManyVectorsInAndOut", func(t *testing.T) {
		ws := uuid.New()
		const n = 2500
		vs := make([]retrieval.Vector, n)
		allIDs := make([]string, n)
		for i := range vs {
			allIDs[i] = strconv.Itoa(i)
			vs[i] = retrieval.Vector{ID: allIDs[i], DocumentID: fmt.Sprint("doc-", i/10), Values: mix(i%dims, (i+1)%dims, float32(i%97)/97),
				Metadata: map[string]any{"bucket": float64(i % 5)}}
		}
		require.NoError(t, index.Upsert(ctx, ws, model, vs))
		got, err := index.Query(ctx, ws, model, axis(3), 5000, nil)
		require.NoError(t, err)
		require.Len(t, got, 1000, "as many as one query may return")
		got, err = index.Query(ctx, ws, model, axis(3), 20, retrieval.Filter{"bucket": {4.0}})
		require.NoError(t, err)
		require.Len(t, got, 20)
		for _, m := range got {
			i, _ := strconv.Atoi(m.ID)
			require.Equal(t, 4, i%5)
		}
		require.NoError(t, index.Delete(ctx, ws, allIDs))
		got, err = index.Query(ctx, ws, model, axis(3), 10, nil)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

// axis is the unit vector along dimension d.
func axis(d int) []float32 {
	v := make([]float32, dims)
	v[d%dims] = 1
	return v
}

// mix is a vector mostly along a with a share w of b, never zero.
func mix(a, b int, w float32) []float32 {
	v := axis(a)
	v[b%dims] += w
	return v
}

func cosine(a, b []float32) float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i] * b[i])
		na += float64(a[i] * a[i])
		nb += float64(b[i] * b[i])
	}
	return float32(dot / math.Sqrt(na*nb))
}

func ids(ms []retrieval.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}
