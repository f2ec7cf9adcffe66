// Package pineconetest runs an in-process gRPC server that implements the methods of
// Pinecone's data plane (VectorService: Upsert, Query, Delete, Fetch,
// DescribeIndexStats) for tests, with
// vectors in memory, exact cosine similarity and Pinecone's metadata filter language.
// It decodes and answers the real protobuf messages: go-pinecone registers their
// descriptors, and the server works on them through dynamicpb, so any Pinecone
// client can use it: PINECONE_INDEX_HOST=srv.Host() (plain http: no TLS).
package pineconetest

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"

	// Registers the VectorService descriptors in protoregistry.GlobalFiles.
	_ "github.com/pinecone-io/go-pinecone/v4/pinecone"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Pinecone's limits, enforced as Pinecone does so that a client that ignores them
// fails here too.
const (
	MaxUpsertVectors  = 1000
	MaxRequestBytes   = 2 << 20
	MaxDeleteIDs      = 1000
	MaxTopK           = 10_000
	MaxTopKWithData   = 1000
	MaxMetadataBytes  = 40 << 10
	MaxIDLength       = 512
	serviceName       = "VectorService"
	apiKeyMetadataKey = "api-key"
)

// Vector is a stored vector.
type Vector struct {
	Values   []float32
	Metadata map[string]any
}

// Server is a fake Pinecone index.
type Server struct {
	apiKey  string
	service protoreflect.ServiceDescriptor
	lis     net.Listener
	grpc    *grpc.Server

	mu         sync.Mutex
	dimension  int
	namespaces map[string]map[string]Vector
	failures   map[string][]error
	calls      map[string]int
}

// Start runs a server accepting apiKey and stops it when the test ends. The index's
// dimension is set by the first vector written, as if the index had been created so,
// unless SetDimension fixed it first.
func Start(t testing.TB, apiKey string) *Server {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(serviceName)
	if err != nil {
		t.Fatalf("pineconetest: %s descriptor not registered: %v", serviceName, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pineconetest: listen: %v", err)
	}
	s := &Server{
		apiKey: apiKey, service: d.(protoreflect.ServiceDescriptor), lis: lis,
		namespaces: map[string]map[string]Vector{}, calls: map[string]int{}, failures: map[string][]error{},
	}
	s.grpc = grpc.NewServer(grpc.UnknownServiceHandler(s.handle), grpc.MaxRecvMsgSize(16<<20))
	go func() { _ = s.grpc.Serve(lis) }()
	t.Cleanup(s.grpc.Stop)
	return s
}

// SetDimension fixes the index's dimension, as creating a Pinecone index does.
func (s *Server) SetDimension(d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dimension = d
}

// Host is the index host for PINECONE_INDEX_HOST.
func (s *Server) Host() string { return "http://" + s.lis.Addr().String() }

// Fail makes the next len(errs) calls of method ("Upsert", "Query", …) fail with
// errs (gRPC status errors), in order.
func (s *Server) Fail(method string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], errs...)
}

// Calls returns how many calls of method ("Upsert", "Query", …) arrived.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Namespace returns a copy of the vectors stored in namespace, by id.
func (s *Server) Namespace(namespace string) map[string]Vector {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Vector{}
	for id, v := range s.namespaces[namespace] {
		out[id] = v
	}
	return out
}

// handle serves every call: it finds the method's messages by name, decodes the
// request into a dynamic message, and answers through protojson, which maps between
// the messages and the plain Go values the handlers work on.
func (s *Server) handle(_ any, stream grpc.ServerStream) error {
	full, _ := grpc.MethodFromServerStream(stream)
	svc, name, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	md := s.service.Methods().ByName(protoreflect.Name(name))
	if svc != serviceName || md == nil {
		return status.Errorf(codes.Unimplemented, "unknown method %s", full)
	}
	in := dynamicpb.NewMessage(md.Input())
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
	if keys := metadata.ValueFromIncomingContext(stream.Context(), apiKeyMetadataKey); len(keys) != 1 || keys[0] != s.apiKey {
		return status.Error(codes.Unauthenticated, "Invalid API Key")
	}
	if fs := s.failures[name]; len(fs) > 0 {
		s.failures[name] = fs[1:]
		return fs[0]
	}
	if size := proto.Size(in); size > MaxRequestBytes {
		return status.Errorf(codes.InvalidArgument, "Request size %dMB exceeds the maximum supported size of 2MB", size>>20)
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(in)
	if err != nil {
		return status.Errorf(codes.Internal, "encode request: %v", err)
	}
	var res any
	switch name {
	case "Upsert":
		res, err = s.upsert(raw)
	case "Query":
		res, err = s.query(raw)
	case "Delete":
		res, err = s.delete(raw)
	case "Fetch":
		res, err = s.fetch(raw)
	case "DescribeIndexStats":
		res, err = s.describeIndexStats()
	default:
		return status.Errorf(codes.Unimplemented, "pineconetest does not implement %s", name)
	}
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return status.Errorf(codes.Internal, "encode response: %v", err)
	}
	out := dynamicpb.NewMessage(md.Output())
	if err := protojson.Unmarshal(b, out); err != nil {
		return status.Errorf(codes.Internal, "encode response: %v", err)
	}
	return stream.SendMsg(out)
}

type wireVector struct {
	ID       string         `json:"id"`
	Values   []float32      `json:"values,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

func (s *Server) upsert(raw []byte) (any, error) {
	var req struct {
		Vectors   []wireVector `json:"vectors"`
		Namespace string       `json:"namespace"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode: %v", err)
	}
	if len(req.Vectors) == 0 || len(req.Vectors) > MaxUpsertVectors {
		return nil, status.Errorf(codes.InvalidArgument, "Invalid request: %d vectors, want 1 to %d", len(req.Vectors), MaxUpsertVectors)
	}
	for _, v := range req.Vectors {
		if v.ID == "" || len(v.ID) > MaxIDLength {
			return nil, status.Errorf(codes.InvalidArgument, "Vector ID must be 1 to %d characters", MaxIDLength)
		}
		if err := s.checkDimension(len(v.Values)); err != nil {
			return nil, err
		}
		if b, _ := json.Marshal(v.Metadata); len(b) > MaxMetadataBytes {
			return nil, status.Errorf(codes.InvalidArgument, "Metadata size is %d bytes, which exceeds the limit of %d bytes per vector", len(b), MaxMetadataBytes)
		}
		for k, val := range v.Metadata {
			if err := checkMetadataValue(k, val); err != nil {
				return nil, err
			}
		}
	}
	ns := s.namespaces[req.Namespace]
	if ns == nil {
		ns = map[string]Vector{}
		s.namespaces[req.Namespace] = ns
	}
	for _, v := range req.Vectors {
		ns[v.ID] = Vector{Values: v.Values, Metadata: v.Metadata}
	}
	return map[string]any{"upserted_count": len(req.Vectors)}, nil
}

func (s *Server) checkDimension(n int) error {
	if n == 0 {
		return status.Error(codes.InvalidArgument, "Dense vectors must contain at least one non-zero value")
	}
	if s.dimension == 0 {
		s.dimension = n
	}
	if n != s.dimension {
		return status.Errorf(codes.InvalidArgument, "Vector dimension %d does not match the dimension of the index %d", n, s.dimension)
	}
	return nil
}

// checkMetadataValue allows what Pinecone stores: strings, numbers, booleans and
// lists of strings.
func checkMetadataValue(key string, v any) error {
	switch v := v.(type) {
	case string, float64, bool:
		return nil
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return status.Errorf(codes.InvalidArgument, "Metadata value for field %s must be a list of strings", key)
			}
		}
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "Metadata value for field %s must be a string, number, boolean or list of strings, got %T", key, v)
}

func (s *Server) query(raw []byte) (any, error) {
	var req struct {
		Namespace       string         `json:"namespace"`
		TopK            int            `json:"top_k"`
		Filter          map[string]any `json:"filter"`
		IncludeValues   bool           `json:"include_values"`
		IncludeMetadata bool           `json:"include_metadata"`
		Vector          []float32      `json:"vector"`
		ID              string         `json:"id"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode: %v", err)
	}
	limit := MaxTopK
	if req.IncludeValues || req.IncludeMetadata {
		limit = MaxTopKWithData
	}
	if req.TopK < 1 || req.TopK > limit {
		return nil, status.Errorf(codes.InvalidArgument, "top_k %d out of range 1 to %d", req.TopK, limit)
	}
	ns := s.namespaces[req.Namespace]
	q := req.Vector
	if req.ID != "" {
		q = ns[req.ID].Values
	}
	if len(q) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Query must have a vector or an id")
	}
	if s.dimension != 0 && len(q) != s.dimension {
		return nil, status.Errorf(codes.InvalidArgument, "Query vector dimension %d does not match the dimension of the index %d", len(q), s.dimension)
	}
	type match struct {
		ID       string         `json:"id"`
		Score    float32        `json:"score"`
		Values   []float32      `json:"values,omitempty"`
		Metadata map[string]any `json:"metadata,omitempty"`
	}
	var matches []match
	for id, v := range ns {
		ok, err := Matches(req.Filter, v.Metadata)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "Invalid filter: %v", err)
		}
		if !ok {
			continue
		}
		m := match{ID: id, Score: Cosine(q, v.Values)}
		if req.IncludeValues {
			m.Values = v.Values
		}
		if req.IncludeMetadata {
			m.Metadata = v.Metadata
		}
		matches = append(matches, m)
	}
	sort.Slice(matches, func(i, j int) bool {
		if matches[i].Score != matches[j].Score {
			return matches[i].Score > matches[j].Score
		}
		return matches[i].ID < matches[j].ID
	})
	if len(matches) > req.TopK {
		matches = matches[:req.TopK]
	}
	return map[string]any{"matches": matches, "namespace": req.Namespace, "usage": map[string]any{"read_units": 5}}, nil
}

func (s *Server) delete(raw []byte) (any, error) {
	var req struct {
		IDs       []string       `json:"ids"`
		DeleteAll bool           `json:"delete_all"`
		Namespace string         `json:"namespace"`
		Filter    map[string]any `json:"filter"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode: %v", err)
	}
	if len(req.IDs) > MaxDeleteIDs {
		return nil, status.Errorf(codes.InvalidArgument, "Cannot delete more than %d ids in one request", MaxDeleteIDs)
	}
	ns, ok := s.namespaces[req.Namespace]
	if !ok {
		// What serverless indexes answer for a namespace that holds no vectors.
		return nil, status.Error(codes.NotFound, "Namespace not found")
	}
	switch {
	case req.DeleteAll:
		delete(s.namespaces, req.Namespace)
	case len(req.IDs) > 0:
		for _, id := range req.IDs {
			delete(ns, id)
		}
	case req.Filter != nil:
		for id, v := range ns {
			ok, err := Matches(req.Filter, v.Metadata)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "Invalid filter: %v", err)
			}
			if ok {
				delete(ns, id)
			}
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "Delete needs ids, delete_all or a filter")
	}
	return map[string]any{}, nil
}

func (s *Server) fetch(raw []byte) (any, error) {
	var req struct {
		IDs       []string `json:"ids"`
		Namespace string   `json:"namespace"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode: %v", err)
	}
	out := map[string]wireVector{}
	for _, id := range req.IDs {
		if v, ok := s.namespaces[req.Namespace][id]; ok {
			out[id] = wireVector{ID: id, Values: v.Values, Metadata: v.Metadata}
		}
	}
	return map[string]any{"vectors": out, "namespace": req.Namespace}, nil
}

func (s *Server) describeIndexStats() (any, error) {
	namespaces := map[string]any{}
	total := 0
	for name, ns := range s.namespaces {
		namespaces[name] = map[string]any{"vector_count": len(ns)}
		total += len(ns)
	}
	res := map[string]any{"namespaces": namespaces, "total_vector_count": total}
	if s.dimension > 0 {
		res["dimension"] = s.dimension
	}
	return res, nil
}

// Cosine is the cosine similarity of a and b, 0 when either is zero.
func Cosine(a, b []float32) float32 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return float32(dot / math.Sqrt(na*nb))
}

// Matches evaluates Pinecone's metadata filter language on md: field conditions
// ({"k": v} meaning $eq, or {"k": {"$op": v}} with $eq, $ne, $gt, $gte, $lt, $lte,
// $in, $nin, $exists) ANDed, and $and / $or of filters. A list-of-strings value
// matches $eq and $in when any element does. A nil or empty filter matches all.
func Matches(filter map[string]any, md map[string]any) (bool, error) {
	for k, cond := range filter {
		var ok bool
		var err error
		switch k {
		case "$and", "$or":
			subs, isList := cond.([]any)
			if !isList || len(subs) == 0 {
				return false, fmt.Errorf("%s needs a non-empty list of filters", k)
			}
			ok = k == "$and"
			for _, sub := range subs {
				f, isMap := sub.(map[string]any)
				if !isMap {
					return false, fmt.Errorf("%s needs a list of filters", k)
				}
				m, err := Matches(f, md)
				if err != nil {
					return false, err
				}
				if k == "$and" {
					ok = ok && m
				} else {
					ok = ok || m
				}
			}
		default:
			if strings.HasPrefix(k, "$") {
				return false, fmt.Errorf("unknown operator %s at the top level", k)
			}
			ok, err = fieldMatches(k, cond, md)
			if err != nil {
				return false, err
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func fieldMatches(key string, cond any, md map[string]any) (bool, error) {
	ops, isOps := cond.(map[string]any)
	if !isOps {
		ops = map[string]any{"$eq": cond}
	}
	v, present := md[key]
	for op, arg := range ops {
		var ok bool
		switch op {
		case "$eq", "$ne":
			if err := checkScalar(op, arg, true); err != nil {
				return false, err
			}
			ok = present && anyEqual(v, arg)
			if op == "$ne" {
				ok = !ok
			}
		case "$in", "$nin":
			list, isList := arg.([]any)
			if !isList {
				return false, fmt.Errorf("%s needs a list", op)
			}
			for _, a := range list {
				if err := checkScalar(op, a, false); err != nil {
					return false, err
				}
				ok = ok || (present && anyEqual(v, a))
			}
			if op == "$nin" {
				ok = !ok
			}
		case "$gt", "$gte", "$lt", "$lte":
			bound, isNum := arg.(float64)
			n, vNum := v.(float64)
			if !isNum {
				return false, fmt.Errorf("%s needs a number", op)
			}
			ok = present && vNum && map[string]bool{"$gt": n > bound, "$gte": n >= bound, "$lt": n < bound, "$lte": n <= bound}[op]
		case "$exists":
			want, isBool := arg.(bool)
			if !isBool {
				return false, fmt.Errorf("$exists needs a boolean")
			}
			ok = present == want
		default:
			return false, fmt.Errorf("unknown operator %s", op)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// checkScalar rejects what Pinecone rejects: $in and $nin take strings and numbers
// only; $eq and $ne take booleans too.
func checkScalar(op string, v any, boolOK bool) error {
	switch v.(type) {
	case string, float64:
		return nil
	case bool:
		if boolOK {
			return nil
		}
	}
	return fmt.Errorf("invalid value %v (%T) for %s", v, v, op)
}

// anyEqual reports whether v, or any element of a list v, equals want.
func anyEqual(v, want any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if e == want {
				return true
			}
		}
		return false
	}
	return v == want
}
