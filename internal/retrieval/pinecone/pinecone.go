// Package pinecone keeps chunk vectors in a Pinecone index (go-pinecone over gRPC):
// one index for the deployment, one namespace per workspace, the document id and the
// embedding model in each vector's metadata so that searches filter on them.
package pinecone

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	pc "github.com/pinecone-io/go-pinecone/v4/pinecone"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retry"
	"github.com/cairn-dev/cairn/internal/telemetry"
)

// Metadata keys Cairn writes next to the document's own metadata. The document's keys
// are stored under MetaPrefix so that none of them can shadow these two.
const (
	DocumentIDKey = "document_id"
	ModelKey      = "model"
	MetaPrefix    = "meta_"
)

// Pinecone's limits: an upsert carries at most 1,000 vectors and 2 MB, a delete at
// most 1,000 ids, and a query that returns metadata at most 1,000 matches.
const (
	MaxUpsertVectors = 1000
	MaxUpsertBytes   = 2 << 20
	MaxDeleteIDs     = 1000
	MaxTopK          = 1000
	// upsertBytes leaves room under MaxUpsertBytes for what the size estimate misses.
	upsertBytes = MaxUpsertBytes * 3 / 4
	// retryAfter is what a 503 advises: Pinecone does not say.
	retryAfter = 5
)

// Index is a retrieval.VectorIndex on one Pinecone index.
type Index struct {
	conn   *pc.IndexConnection
	policy retry.Policy
	tel    *telemetry.Telemetry
	// dim is the index's dimension once known (0 before).
	dim atomic.Int64
}

// Option changes an Index's defaults.
type Option func(*Index)

// defaultPolicy gives up within about 17 s: Pinecone answers in milliseconds when
// it is well, and writes wait on it inside a database transaction.
var defaultPolicy = retry.Policy{Attempts: 3, Base: 200 * time.Millisecond, Max: 2 * time.Second, Timeout: 5 * time.Second}

// WithRetry replaces the retry policy (defaultPolicy).
func WithRetry(p retry.Policy) Option { return func(x *Index) { x.policy = p } }

// WithTelemetry records each call (metrics, a span, the last failure for health
// reports).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(x *Index) { x.tel = t } }

// New returns the index at cfg.IndexHost. It does not connect: the first call does.
// A host given as http://host:port is reached without TLS (Pinecone Local, tests).
func New(cfg config.Pinecone, opts ...Option) (*Index, error) {
	if cfg.APIKey == "" || cfg.IndexHost == "" {
		return nil, errors.New("pinecone: API key and index host are required")
	}
	client, err := pc.NewClient(pc.NewClientParams{ApiKey: cfg.APIKey, SourceTag: "cairn"})
	if err != nil {
		return nil, fmt.Errorf("pinecone: %w", err)
	}
	conn, err := client.Index(pc.NewIndexConnParams{Host: cfg.IndexHost})
	if err != nil {
		return nil, fmt.Errorf("pinecone: index %s: %w", cfg.IndexHost, err)
	}
	x := &Index{conn: conn, policy: defaultPolicy}
	for _, o := range opts {
		o(x)
	}
	return x, nil
}

// Close closes the connection.
func (x *Index) Close() error { return x.conn.Close() }

// Ping asks Pinecone for the index's statistics once, without retries, to tell
// whether it answers (health reports).
func (x *Index) Ping(ctx context.Context) error {
	ctx, end := x.tel.Call(ctx, telemetry.Pinecone, "describe index")
	_, err := x.conn.DescribeIndexStats(telemetry.OutgoingGRPC(ctx))
	end(err)
	return err
}

// namespace is the workspace's namespace: vectors of different workspaces never meet.
func (x *Index) namespace(workspaceID uuid.UUID) *pc.IndexConnection {
	return x.conn.WithNamespace(workspaceID.String())
}

// Upsert adds or replaces vectors of model in the workspace, in batches within
// Pinecone's limits. A failure part way leaves earlier batches written; their ids
// are the caller's to delete or overwrite.
func (x *Index) Upsert(ctx context.Context, workspaceID uuid.UUID, model string, vs []retrieval.Vector) error {
	if len(vs) == 0 {
		return nil
	}
	dim, err := x.dimension(ctx)
	if err != nil {
		return err
	}
	if dim > 0 && len(vs[0].Values) != dim {
		// An operator must make the embedder fit the index; until then nothing of this
		// model can be stored, and the log says why.
		return apperr.Unavailablef(fmt.Errorf("pinecone: the index has dimension %d but model %s makes %d: set LOCAL_EMBEDDING_DIM or OPENAI_EMBEDDING_DIMENSIONS to match",
			dim, model, len(vs[0].Values)), retryAfter, "the vector index is unavailable; try again later")
	}
	ns := x.namespace(workspaceID)
	var batch []*pc.Vector
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := x.do(ctx, "upsert", func(ctx context.Context) error {
			_, err := ns.UpsertVectors(ctx, batch)
			return err
		})
		batch, size = nil, 0
		return err
	}
	for _, v := range vs {
		pv, n, err := toPinecone(v, model)
		if err != nil {
			return err
		}
		if len(batch) >= MaxUpsertVectors || (len(batch) > 0 && size+n > upsertBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, pv)
		size += n
	}
	return flush()
}

// toPinecone converts v and returns its approximate size on the wire.
func toPinecone(v retrieval.Vector, model string) (*pc.Vector, int, error) {
	fields := map[string]*structpb.Value{
		DocumentIDKey: structpb.NewStringValue(v.DocumentID),
		ModelKey:      structpb.NewStringValue(model),
	}
	for k, val := range v.Metadata {
		if val == nil {
			continue // Pinecone has no null; an absent key filters the same
		}
		pv, err := metadataValue(val)
		if err != nil {
			return nil, 0, fmt.Errorf("pinecone: vector %s: metadata %q: %w", v.ID, k, err)
		}
		fields[MetaPrefix+k] = pv
	}
	md := &structpb.Struct{Fields: fields}
	values := v.Values
	return &pc.Vector{Id: v.ID, Values: &values, Metadata: md}, len(v.ID) + 4*len(values) + proto.Size(md) + 16, nil
}

// metadataValue converts one of the document metadata's scalar values.
func metadataValue(v any) (*structpb.Value, error) {
	pv, err := structpb.NewValue(v)
	if err != nil {
		return nil, err
	}
	switch pv.Kind.(type) {
	case *structpb.Value_StringValue, *structpb.Value_NumberValue, *structpb.Value_BoolValue:
		return pv, nil
	}
	return nil, fmt.Errorf("%T is not a string, number or boolean", v)
}

// Delete removes vectors by id from the workspace, in batches; unknown ids, and a
// workspace Pinecone has never seen, are not errors.
func (x *Index) Delete(ctx context.Context, workspaceID uuid.UUID, ids []string) error {
	ns := x.namespace(workspaceID)
	for start := 0; start < len(ids); start += MaxDeleteIDs {
		batch := ids[start:min(start+MaxDeleteIDs, len(ids))]
		err := x.do(ctx, "delete", func(ctx context.Context) error {
			err := ns.DeleteVectorsById(ctx, batch)
			if status.Code(err) == codes.NotFound {
				return nil // serverless indexes answer so for a namespace without vectors
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// DropWorkspace deletes the workspace's namespace with every vector in it; a
// namespace Pinecone does not have is not an error.
func (x *Index) DropWorkspace(ctx context.Context, workspaceID uuid.UUID) error {
	ns := x.namespace(workspaceID)
	return x.do(ctx, "delete namespace", func(ctx context.Context) error {
		err := ns.DeleteAllVectorsInNamespace(ctx)
		if status.Code(err) == codes.NotFound {
			return nil
		}
		return err
	})
}

// Query returns up to topK (at most MaxTopK) vectors of model in the workspace
// closest to q that pass f, closest first.
func (x *Index) Query(ctx context.Context, workspaceID uuid.UUID, model string, q []float32, topK int, f retrieval.Filter) ([]retrieval.Match, error) {
	if topK <= 0 {
		return nil, nil
	}
	filter, ok, err := Translate(model, f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	dim, err := x.dimension(ctx)
	if err != nil {
		return nil, err
	}
	if dim > 0 && len(q) != dim {
		// Vectors of a model with another dimension cannot be in the index, so there
		// is nothing to find (a caller without an OpenAI key searching an index of
		// OpenAI vectors, say): keyword search still answers.
		return nil, nil
	}
	ns := x.namespace(workspaceID)
	var res *pc.QueryVectorsResponse
	err = x.do(ctx, "query", func(ctx context.Context) error {
		var err error
		res, err = ns.QueryByVectorValues(ctx, &pc.QueryByVectorValuesRequest{
			Vector: q, TopK: uint32(min(topK, MaxTopK)), MetadataFilter: filter, IncludeMetadata: true,
		})
		if status.Code(err) == codes.NotFound {
			res, err = &pc.QueryVectorsResponse{}, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]retrieval.Match, 0, len(res.Matches))
	for _, m := range res.Matches {
		if m == nil || m.Vector == nil {
			continue
		}
		var doc string
		if m.Vector.Metadata != nil {
			doc = m.Vector.Metadata.Fields[DocumentIDKey].GetStringValue()
		}
		out = append(out, retrieval.Match{ID: m.Vector.Id, DocumentID: doc, Score: m.Score})
	}
	return out, nil
}

// dimension returns the index's dimension, asking Pinecone the first time; 0 when the
// index does not know yet (an emulator with no vectors).
func (x *Index) dimension(ctx context.Context) (int, error) {
	if d := x.dim.Load(); d > 0 {
		return int(d), nil
	}
	var res *pc.DescribeIndexStatsResponse
	err := x.do(ctx, "describe index", func(ctx context.Context) error {
		var err error
		res, err = x.conn.DescribeIndexStats(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if res.Dimension == nil || *res.Dimension == 0 {
		return 0, nil
	}
	x.dim.Store(int64(*res.Dimension))
	return int(*res.Dimension), nil
}

// Translate turns a search filter into Pinecone's filter language, restricted to
// vectors of model: {"$and": [{"model": {"$eq": m}}, {"meta_k": {"$in": [...]}}, ...]}.
// ok is false when the filter can match nothing (a key with no allowed value).
func Translate(model string, f retrieval.Filter) (filter *structpb.Struct, ok bool, err error) {
	clauses := []any{map[string]any{ModelKey: map[string]any{"$eq": model}}}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same filter always reads the same
	for _, k := range keys {
		vs := f[k]
		if len(vs) == 0 {
			return nil, false, nil
		}
		clauses = append(clauses, clause(MetaPrefix+k, vs))
	}
	filter, err = structpb.NewStruct(map[string]any{"$and": clauses})
	if err != nil {
		return nil, false, fmt.Errorf("pinecone: filter: %w", err)
	}
	return filter, true, nil
}

// clause matches key against any of vs. Pinecone's $in takes only strings and
// numbers, so a list with a boolean becomes an $or of equalities.
func clause(key string, vs []any) map[string]any {
	if len(vs) == 1 {
		return map[string]any{key: map[string]any{"$eq": vs[0]}}
	}
	allStrings, allNumbers := true, true
	for _, v := range vs {
		_, s := v.(string)
		_, n := v.(float64)
		allStrings, allNumbers = allStrings && s, allNumbers && n
	}
	if allStrings || allNumbers {
		return map[string]any{key: map[string]any{"$in": vs}}
	}
	or := make([]any, len(vs))
	for i, v := range vs {
		or[i] = map[string]any{key: map[string]any{"$eq": v}}
	}
	return map[string]any{"$or": or}
}

// do runs one call with retries and maps its final failure to a 503: to the API, a
// vector index that refuses or fails is a dependency that is down.
func (x *Index) do(ctx context.Context, op string, call func(ctx context.Context) error) error {
	ctx, end := x.tel.Call(ctx, telemetry.Pinecone, op)
	err := x.policy.Do(telemetry.OutgoingGRPC(ctx), call, func(err error) (bool, time.Duration) {
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded, codes.Internal:
			return true, 0
		}
		return false, 0
	})
	end(err)
	if err == nil {
		return nil
	}
	if retry.CallerGone(ctx) {
		return fmt.Errorf("pinecone: %s: %w", op, ctx.Err())
	}
	return apperr.Unavailablef(fmt.Errorf("pinecone: %s: %w", op, err), retryAfter, "the vector index is unavailable; try again later")
}
