package pinecone_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone/pineconetest"
	"github.com/cairn-dev/cairn/internal/retry"
)

const apiKey = "pcsk_test_0123456789SECRET"

// noWait retries at once: the tests check what is retried, not how long it waits.
var noWait = retry.Policy{Attempts: 4, Timeout: 10 * time.Second,
	Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }}

func setup(t *testing.T) (*pineconetest.Server, *pinecone.Index) {
	t.Helper()
	srv := pineconetest.Start(t, apiKey)
	return srv, open(t, config.Pinecone{APIKey: apiKey, IndexHost: srv.Host()})
}

func open(t *testing.T, cfg config.Pinecone) *pinecone.Index {
	t.Helper()
	index, err := pinecone.New(cfg, pinecone.WithRetry(noWait))
	require.NoError(t, err)
	t.Cleanup(func() { _ = index.Close() })
	return index
}

func TestConformance(t *testing.T) {
	_, index := setup(t)
	runConformance(t, index)
}

func TestLayout(t *testing.T) {
	ctx := context.Background()

	t.Run("OneNamespacePerWorkspaceWithDocumentAndModelInMetadata", func(t *testing.T) {
		srv, index := setup(t)
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, "openai/text-embedding-3-small", []retrieval.Vector{{
			ID: "42", DocumentID: "doc-1", Values: axis(0),
			Metadata: map[string]any{"lang": "en", "year": 2020.0, "draft": false, "gone": nil},
		}}))
		stored := srv.Namespace(ws.String())
		require.Len(t, stored, 1)
		require.Equal(t, axis(0), stored["42"].Values)
		require.Equal(t, map[string]any{
			"document_id": "doc-1", "model": "openai/text-embedding-3-small",
			"meta_lang": "en", "meta_year": 2020.0, "meta_draft": false,
		}, stored["42"].Metadata)
	})

	t.Run("FilterTranslation", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			filter retrieval.Filter
			want   string
		}{
			{"ModelOnly", nil, `{"$and":[{"model":{"$eq":"m"}}]}`},
			{"Equality", retrieval.Filter{"lang": {"en"}}, `{"$and":[{"model":{"$eq":"m"}},{"meta_lang":{"$eq":"en"}}]}`},
			{"Strings", retrieval.Filter{"lang": {"en", "fr"}}, `{"$and":[{"model":{"$eq":"m"}},{"meta_lang":{"$in":["en","fr"]}}]}`},
			{"Numbers", retrieval.Filter{"year": {2020.0, 2021.0}}, `{"$and":[{"model":{"$eq":"m"}},{"meta_year":{"$in":[2020,2021]}}]}`},
			{"BooleansBecomeOr", retrieval.Filter{"draft": {true, false}},
				`{"$and":[{"model":{"$eq":"m"}},{"$or":[{"meta_draft":{"$eq":true}},{"meta_draft":{"$eq":false}}]}]}`},
			{"KeysInOrder", retrieval.Filter{"b": {"x"}, "a": {1.0}},
				`{"$and":[{"model":{"$eq":"m"}},{"meta_a":{"$eq":1}},{"meta_b":{"$eq":"x"}}]}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, ok, err := pinecone.Translate("m", tc.filter)
				require.NoError(t, err)
				require.True(t, ok)
				b, err := protojson.Marshal(got)
				require.NoError(t, err)
				require.JSONEq(t, tc.want, string(b))
			})
		}
		_, ok, err := pinecone.Translate("m", retrieval.Filter{"lang": {}})
		require.NoError(t, err)
		require.False(t, ok, "a key with no allowed value matches nothing")
	})

	t.Run("UpsertsBatchedByCount", func(t *testing.T) {
		srv, index := setup(t)
		require.NoError(t, index.Upsert(ctx, uuid.New(), "m", vectors(2500, dims)))
		require.Equal(t, 3, srv.Calls("Upsert"), "1000 + 1000 + 500")
	})

	t.Run("UpsertsBatchedBySize", func(t *testing.T) {
		srv, index := setup(t)
		ws := uuid.New()
		// 500 vectors of 1536 dimensions are about 3 MB, over Pinecone's 2 MB.
		require.NoError(t, index.Upsert(ctx, ws, "m", vectors(500, 1536)))
		require.GreaterOrEqual(t, srv.Calls("Upsert"), 2)
		require.Len(t, srv.Namespace(ws.String()), 500)
	})

	t.Run("DeletesBatched", func(t *testing.T) {
		srv, index := setup(t)
		ws := uuid.New()
		vs := vectors(2500, dims)
		require.NoError(t, index.Upsert(ctx, ws, "m", vs))
		ids := make([]string, len(vs))
		for i, v := range vs {
			ids[i] = v.ID
		}
		require.NoError(t, index.Delete(ctx, ws, ids))
		require.Equal(t, 3, srv.Calls("Delete"))
		require.Empty(t, srv.Namespace(ws.String()))
	})

	t.Run("NothingToDoCallsNothing", func(t *testing.T) {
		srv, index := setup(t)
		require.NoError(t, index.Upsert(ctx, uuid.New(), "m", nil))
		require.NoError(t, index.Delete(ctx, uuid.New(), nil))
		got, err := index.Query(ctx, uuid.New(), "m", axis(0), 5, retrieval.Filter{"k": {}})
		require.NoError(t, err)
		require.Empty(t, got)
		require.Zero(t, srv.Calls("Upsert")+srv.Calls("Delete")+srv.Calls("Query")+srv.Calls("DescribeIndexStats"))
	})
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	query := func(index *pinecone.Index) error {
		_, err := index.Query(ctx, uuid.New(), "m", axis(0), 5, nil)
		return err
	}

	t.Run("TransientFailureRetried", func(t *testing.T) {
		srv, index := setup(t)
		srv.SetDimension(dims)
		srv.Fail("Query", status.Error(codes.Unavailable, "try later"), status.Error(codes.ResourceExhausted, "slow down"))
		require.NoError(t, query(index))
		require.Equal(t, 3, srv.Calls("Query"))
	})

	t.Run("OutageIs503", func(t *testing.T) {
		srv, index := setup(t)
		for range 4 {
			srv.Fail("Upsert", status.Error(codes.Unavailable, "down"))
		}
		err := index.Upsert(ctx, uuid.New(), "m", vectors(1, dims))
		requireUnavailable(t, err)
		require.Equal(t, 4, srv.Calls("Upsert"))
	})

	t.Run("DescribeOutageIs503", func(t *testing.T) {
		srv, index := setup(t)
		for range 4 {
			srv.Fail("DescribeIndexStats", status.Error(codes.Unavailable, "down"))
		}
		requireUnavailable(t, query(index))
		require.Zero(t, srv.Calls("Query"))
	})

	t.Run("RefusalIs503WithoutRetry", func(t *testing.T) {
		srv, index := setup(t)
		srv.Fail("Upsert", status.Error(codes.InvalidArgument, "bad vector"))
		err := index.Upsert(ctx, uuid.New(), "m", vectors(1, dims))
		requireUnavailable(t, err)
		require.Contains(t, err.Error(), "bad vector", "the cause is kept for the log")
		require.Equal(t, 1, srv.Calls("Upsert"))
	})

	t.Run("ModelOfAnotherDimensionCannotBeStored", func(t *testing.T) {
		srv, index := setup(t)
		srv.SetDimension(dims)
		err := index.Upsert(ctx, uuid.New(), "local-384", vectors(1, dims+1))
		requireUnavailable(t, err)
		require.Contains(t, err.Error(), "LOCAL_EMBEDDING_DIM", "the log tells the operator what to change")
		require.Zero(t, srv.Calls("Upsert"))
	})

	t.Run("ModelOfAnotherDimensionFindsNothing", func(t *testing.T) {
		srv, index := setup(t)
		srv.SetDimension(dims)
		ws := uuid.New()
		require.NoError(t, index.Upsert(ctx, ws, "m", vectors(3, dims)))
		got, err := index.Query(ctx, ws, "other", make([]float32, dims+1), 5, nil)
		require.NoError(t, err, "no vector of that model can be there: nothing found, no outage")
		require.Empty(t, got)
		require.Zero(t, srv.Calls("Query"))
		require.Equal(t, 1, srv.Calls("DescribeIndexStats"), "the dimension is asked once")
	})

	t.Run("WrongKeyIs503AndNotInTheError", func(t *testing.T) {
		srv := pineconetest.Start(t, apiKey)
		const wrong = "pcsk_wrong_key_SECRET"
		index := open(t, config.Pinecone{APIKey: wrong, IndexHost: srv.Host()})
		err := query(index)
		requireUnavailable(t, err)
		require.NotContains(t, err.Error(), wrong)
	})

	t.Run("UnreachableIs503", func(t *testing.T) {
		index := open(t, config.Pinecone{APIKey: apiKey, IndexHost: "http://127.0.0.1:1"})
		requireUnavailable(t, query(index))
	})

	t.Run("CallerCancellingIsNotAnOutage", func(t *testing.T) {
		_, index := setup(t)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := index.Query(ctx, uuid.New(), "m", axis(0), 5, nil)
		require.ErrorIs(t, err, context.Canceled)
		require.Nil(t, apperr.As(err))
	})

	t.Run("ConfigurationRequired", func(t *testing.T) {
		_, err := pinecone.New(config.Pinecone{IndexHost: "http://127.0.0.1:1"})
		require.Error(t, err)
	})
}

func requireUnavailable(t *testing.T, err error) {
	t.Helper()
	e := apperr.As(err)
	require.NotNil(t, e, "want an apperr, got %v", err)
	require.Equal(t, apperr.Unavailable, e.Code)
	require.Equal(t, 5, e.RetryAfter)
}

// vectors returns n distinct vectors of length d with small metadata.
func vectors(n, d int) []retrieval.Vector {
	vs := make([]retrieval.Vector, n)
	for i := range vs {
		v := make([]float32, d)
		v[i%d] = 1
		v[(i+1)%d] = float32(i) / float32(n)
		vs[i] = retrieval.Vector{ID: strconv.Itoa(i), DocumentID: "doc-" + strconv.Itoa(i/7), Values: v,
			Metadata: map[string]any{"n": float64(i)}}
	}
	return vs
}
