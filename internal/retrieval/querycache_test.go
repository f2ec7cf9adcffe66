package retrieval

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/retrieval/querycache"
)

// countingEmbedder stands for a paid embedding service: it counts the texts it embeds.
type countingEmbedder struct {
	calls atomic.Int64
	dim   int
}

func (e *countingEmbedder) Model() string { return "openai/text-embedding-3-small" }

func (e *countingEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	e.calls.Add(int64(len(texts)))
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, e.dim)
		for j := range v {
			v[j] = float32(len(t)+j) / 1000
		}
		out[i] = v
	}
	return out, nil
}

// cacheReplicas are n services that share one Redis for query embeddings, as n
// replicas do; rdb is a client of that Redis.
func cacheReplicas(tb testing.TB, n int) ([]*Service, *redis.Client) {
	tb.Helper()
	rd := redistest.Start(tb)
	opts, err := redis.ParseURL(rd.URL)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { _ = rdb.Close() })
	out := make([]*Service, n)
	for i := range out {
		c := redis.NewClient(opts)
		tb.Cleanup(func() { _ = c.Close() })
		out[i] = &Service{queries: querycache.New(c, time.Hour, slog.New(slog.DiscardHandler), nil)}
	}
	return out, rdb
}

// zipfStream draws n queries from qs with Zipf-like popularity (the first the most
// asked); a fraction unique of them are one-off queries no one asks again, as in
// real search logs.
func zipfStream(qs []string, n int, unique float64, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 11))
	order := rng.Perm(len(qs)) // popularity unrelated to the file's order
	z := rand.NewZipf(rng, 1.1, 1, uint64(len(qs)-1))
	out := make([]string, n)
	for i := range out {
		if rng.Float64() < unique {
			out[i] = qs[order[z.Uint64()]] + " #" + strconv.Itoa(i)
			continue
		}
		out[i] = qs[order[z.Uint64()]]
	}
	return out
}

// TestQueryCacheStreamEmbedsEachDistinctQueryOnce sends a Zipf-like query stream
// round-robin to three replicas sharing Redis: the embedder is called exactly once
// per distinct query, and every search gets the vector its own query would.
func TestQueryCacheStreamEmbedsEachDistinctQueryOnce(t *testing.T) {
	replicas, _ := cacheReplicas(t, 3)
	co := newCorpus(3)
	var qs []string
	for range 200 {
		qs = append(qs, co.query())
	}
	stream := zipfStream(qs, 2000, 0.2, 1)
	emb := &countingEmbedder{dim: 8}
	ws := Caller{WorkspaceID: uuid.New()}
	distinct := map[string]bool{}
	for i, q := range stream {
		v, err := replicas[i%3].embedQuery(context.Background(), ws, emb, q)
		if err != nil {
			t.Fatal(err)
		}
		if want := float32(len(q)) / 1000; v[0] != want {
			t.Fatalf("query %q got another query's vector (%v, want %v first)", q, v[0], want)
		}
		distinct[q] = true
	}
	if got := emb.calls.Load(); got != int64(len(distinct)) {
		t.Fatalf("%d embeddings for %d distinct queries in a stream of %d", got, len(distinct), len(stream))
	}
	if len(distinct) >= len(stream)/2 {
		t.Fatalf("the stream repeats too little (%d distinct of %d) to test the cache", len(distinct), len(stream))
	}
}

// TestQueryCacheScopes: a workspace's own endpoint never shares vectors with
// another workspace, the server's model does.
func TestQueryCacheScopes(t *testing.T) {
	replicas, _ := cacheReplicas(t, 1)
	s := replicas[0]
	a, b := Caller{WorkspaceID: uuid.New()}, Caller{WorkspaceID: uuid.New()}
	server := &countingEmbedder{dim: 4}
	for _, c := range []Caller{a, b} {
		if _, err := s.embedQuery(context.Background(), c, server, "tide tables"); err != nil {
			t.Fatal(err)
		}
	}
	if n := server.calls.Load(); n != 1 {
		t.Fatalf("the server's model embedded one query for two workspaces %d times, want 1", n)
	}
	own := &customEmbedder{countingEmbedder{dim: 4}}
	for _, c := range []Caller{a, b, a} {
		if _, err := s.embedQuery(context.Background(), c, own, "tide tables"); err != nil {
			t.Fatal(err)
		}
	}
	if n := own.calls.Load(); n != 2 {
		t.Fatalf("a custom endpoint embedded for workspaces a, b, a %d times, want 2 (one each)", n)
	}
}

type customEmbedder struct{ countingEmbedder }

func (e *customEmbedder) Model() string { return "custom/bge-small#0a1b2c3d" }

// benchQueries reads the query texts of CAIRN_BENCH_QUERIES: a BEIR queries.jsonl,
// a collection directory holding one, or a directory of collections.
func benchQueries(b *testing.B) []string {
	path := os.Getenv("CAIRN_BENCH_QUERIES")
	if path == "" {
		b.Skip("set CAIRN_BENCH_QUERIES to a BEIR queries.jsonl or a directory of collections")
	}
	files := []string{path}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "queries.jsonl"))
		more, _ := filepath.Glob(filepath.Join(path, "*", "queries.jsonl"))
		files = append(files, more...)
	}
	var qs []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var q struct{ Text string }
			if json.Unmarshal(sc.Bytes(), &q) == nil && q.Text != "" {
				qs = append(qs, q.Text)
			}
		}
		fh.Close()
	}
	if len(qs) < 2 {
		b.Fatalf("no queries in %s", path)
	}
	return qs
}

// BenchmarkQueryCache reports the shared cache's hit rate over a query stream drawn
// Zipf-like from a collection's queries (CAIRN_BENCH_QUERIES), sent round-robin to
// three replicas, with no or 30% one-off queries; and what a hit and a miss cost in Redis
// (a miss also pays the embedding service: 100–500 ms at OpenAI, not measured here).
//
//	CAIRN_BENCH_QUERIES=/path/to/collections go test -run '^$' -bench BenchmarkQueryCache ./internal/retrieval/
func BenchmarkQueryCache(b *testing.B) {
	qs := benchQueries(b)
	for _, run := range []struct {
		n      int
		unique float64
	}{{1000, 0}, {10000, 0}, {1000, 0.3}, {10000, 0.3}} {
		b.Run(fmt.Sprintf("stream=%d/one-off=%.0f%%", run.n, 100*run.unique), func(b *testing.B) {
			replicas, rdb := cacheReplicas(b, 3)
			stream := zipfStream(qs, run.n, run.unique, 7)
			ws := Caller{WorkspaceID: uuid.New()}
			var hits, total int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				rdb.FlushDB(context.Background())
				emb := &countingEmbedder{dim: 1536}
				b.StartTimer()
				for i, q := range stream {
					if _, err := replicas[i%3].embedQuery(context.Background(), ws, emb, q); err != nil {
						b.Fatal(err)
					}
				}
				hits += int64(len(stream)) - emb.calls.Load()
				total += int64(len(stream))
			}
			b.ReportMetric(100*float64(hits)/float64(total), "hit%")
			b.ReportMetric(float64(len(qs)), "queries")
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/query")
		})
	}
	b.Run("hit", func(b *testing.B) {
		replicas, _ := cacheReplicas(b, 1)
		s, ws, emb := replicas[0], Caller{WorkspaceID: uuid.New()}, &countingEmbedder{dim: 1536}
		if _, err := s.embedQuery(context.Background(), ws, emb, qs[0]); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			if _, err := s.embedQuery(context.Background(), ws, emb, qs[0]); err != nil {
				b.Fatal(err)
			}
		}
		if emb.calls.Load() != 1 {
			b.Fatalf("a hit embedded: %d calls", emb.calls.Load())
		}
	})
	b.Run("miss", func(b *testing.B) {
		replicas, _ := cacheReplicas(b, 1)
		s, ws, emb := replicas[0], Caller{WorkspaceID: uuid.New()}, &countingEmbedder{dim: 1536}
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.embedQuery(context.Background(), ws, emb, qs[0]+" "+strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
