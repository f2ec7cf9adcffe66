package retrieval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/philippgille/chromem-go"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
)

// corpus makes English-like text: sentences of words drawn from a Zipf
// distribution over a fixed pseudo-vocabulary, so term frequencies look like a
// real collection's (a few very common words, a long tail of rare ones).
type corpus struct {
	vocab []string
	zipf  *rand.Zipf
	rng   *rand.Rand
}

func newCorpus(seed uint64) *corpus {
	rng := rand.New(rand.NewPCG(seed, 7))
	syl := []string{"ka", "lo", "mer", "tin", "sa", "ve", "ron", "di", "pul", "an", "est", "ol", "ur", "ix", "bre", "tho", "qua", "ne", "fi", "gal"}
	vocab := make([]string, 30000)
	seen := map[string]bool{}
	for i := range vocab {
		for {
			var b strings.Builder
			for range 2 + rng.IntN(3) {
				b.WriteString(syl[rng.IntN(len(syl))])
			}
			if w := b.String(); !seen[w] {
				seen[w] = true
				vocab[i] = w
				break
			}
		}
	}
	// As in English, the most frequent words are function words, which the
	// full-text configuration drops and the local embedder ignores.
	copy(vocab, strings.Fields(`the of and to a in is that for it as was with be by on not he this are or his
		from at which but have an had they you were their one all we can her has there been if more when will
		would who so no she other its may these what them than some him time into only do could new about two
		also our any up out my then first over such many most should now where very after must over through
		each before between because those both same under while`))
	return &corpus{vocab: vocab, zipf: rand.NewZipf(rng, 1.07, 2, uint64(len(vocab)-1)), rng: rng}
}

func (c *corpus) word() string { return c.vocab[c.zipf.Uint64()] }

// text returns about n characters of sentences.
func (c *corpus) text(n int) string {
	var b strings.Builder
	for b.Len() < n {
		k := 8 + c.rng.IntN(12)
		for i := range k {
			w := c.word()
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if i < k-1 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(". ")
	}
	return b.String()
}

// query is a question of five to eight words.
func (c *corpus) query() string {
	var ws []string
	for range 5 + c.rng.IntN(4) {
		ws = append(ws, c.word())
	}
	return strings.Join(ws, " ")
}

// benchWorkspace stores n documents of about three chunks each.
func benchWorkspace(b *testing.B, svc *Service, c Caller, co *corpus, docs int) (chunks int, took time.Duration) {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < docs; i += 100 {
		batch := make([]DocumentInput, 0, 100)
		for j := i; j < min(i+100, docs); j++ {
			batch = append(batch, DocumentInput{ID: "doc-" + strconv.Itoa(j), Title: co.text(30), Text: co.text(2200),
				Metadata: map[string]any{"shard": float64(j % 10)}})
		}
		stored, err := svc.Upsert(ctx, c, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range stored {
			chunks += s.Chunks
		}
	}
	return chunks, time.Since(start)
}

func benchService(b *testing.B) (*Service, Caller) {
	pool, _ := dbtest.NewPool(b)
	ws, err := dbq.New(pool).WorkspaceCreate(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	svc := NewService(Options{Pool: pool, Plans: plan.Default()})
	return svc, Caller{WorkspaceID: ws.ID, Plan: plan.Enterprise}
}

// BenchmarkIngest stores documents through the service (chunking, local
// embeddings, PostgreSQL rows, term statistics) and reports chunks per second.
func BenchmarkIngest(b *testing.B) {
	svc, c := benchService(b)
	co := newCorpus(1)
	b.ResetTimer()
	chunks, took := benchWorkspace(b, svc, c, co, 100*b.N)
	b.ReportMetric(float64(chunks)/took.Seconds(), "chunks/s")
}

// BenchmarkSearch100k fills one workspace with about 100,000 chunks and reports the
// median latency of each search mode through the service.
func BenchmarkSearch100k(b *testing.B) {
	svc, c := benchService(b)
	co := newCorpus(2)
	chunks, took := benchWorkspace(b, svc, c, co, 25_000)
	b.Logf("stored %d chunks in %v (%.0f chunks/s)", chunks, took.Round(time.Second), float64(chunks)/took.Seconds())
	ctx := context.Background()
	for _, m := range []Mode{Keyword, Semantic, Hybrid} {
		b.Run(string(m), func(b *testing.B) {
			// The first query loads the workspace's vectors into the cache.
			if _, err := svc.Search(ctx, c, SearchInput{Query: co.query(), TopK: 5, Mode: m}); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				q := co.query()
				t := time.Now()
				if _, err := svc.Search(ctx, c, SearchInput{Query: q, TopK: 5, Mode: m}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		})
	}
	_, bytes := svc.Index().(*BuiltinIndex).Stats()
	b.Logf("builtin index cache: %.1f MiB", float64(bytes)/(1<<20))
}

// BenchmarkIndexVsChromem queries the same 100,000 local-embedder vectors in the
// builtin index's scan and in chromem-go, in one run, and reports the memory the
// builtin index holds them in.
func BenchmarkIndexVsChromem(b *testing.B) {
	const n = 100_000
	emb := NewLocalEmbedder(DefaultLocalDim)
	co := newCorpus(3)
	texts := make([]string, n)
	for i := range texts {
		texts[i] = co.text(600)
	}
	vecs, _ := emb.Embed(context.Background(), texts)
	queries := make([][]float32, 64)
	for i := range queries {
		queries[i] = emb.vector(co.query())
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e := &entry{}
	e.reset()
	for i, v := range vecs {
		e.add(dbq.ChunkVectorLoadRow{ChunkID: int64(i + 1), DocumentID: "d" + strconv.Itoa(i/3), Metadata: []byte(`{}`), Embedding: encodeVector(v)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc - before.HeapAlloc)
	b.Logf("builtin index: %d vectors of %d dimensions use %.1f MiB of heap, %.0f bytes per vector",
		n, emb.Dim(), heap/(1<<20), heap/n)

	db := chromem.NewDB()
	coll, err := db.CreateCollection("bench", nil, func(context.Context, string) ([]float32, error) {
		return nil, fmt.Errorf("not used: embeddings are given")
	})
	if err != nil {
		b.Fatal(err)
	}
	docs := make([]chromem.Document, n)
	for i, v := range vecs {
		docs[i] = chromem.Document{ID: strconv.Itoa(i + 1), Embedding: v, Content: "x"}
	}
	if err := coll.AddDocuments(context.Background(), docs, runtime.NumCPU()); err != nil {
		b.Fatal(err)
	}

	b.Run("builtin", func(b *testing.B) {
		for i := range b.N {
			e.search(queries[i%len(queries)], 10, nil)
		}
	})
	b.Run("chromem-go", func(b *testing.B) {
		for i := range b.N {
			if _, err := coll.QueryEmbedding(context.Background(), queries[i%len(queries)], 10, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("builtin-same-results", func(b *testing.B) {
		// Not a timing: checks that both return the same neighbours, so the
		// comparison is fair; the builtin index's one byte per dimension moves
		// scores by well under 0.01.
		for i := range min(b.N, 8) {
			got := e.search(queries[i], 10, nil)
			want, _ := coll.QueryEmbedding(context.Background(), queries[i], 10, nil, nil)
			for j := range got {
				if abs32(got[j].Score-want[j].Similarity) > 0.01 {
					b.Fatalf("query %d rank %d: builtin %s (%.5f), chromem %s (%.5f)", i, j, got[j].ID, got[j].Score, want[j].ID, want[j].Similarity)
				}
			}
		}
	})
}

// BenchmarkDot is the scan's inner loop alone.
func BenchmarkDot(b *testing.B) {
	a, c := make([]float32, DefaultLocalDim), make([]float32, DefaultLocalDim)
	for i := range a {
		a[i], c[i] = float32(i%7), float32(i%5)
	}
	var s float32
	for range b.N {
		s += dot(a, c)
	}
	_ = s
}

// BenchmarkStorageBytes stores about 3,000 chunks with the local embedder and
// reports PostgreSQL's size per chunk (tables, TOAST and indexes): documents,
// chunks with their full-text index, and chunk_vectors. docs/scaling.md's model
// multiplies it out.
//
//	go test -run '^$' -bench StorageBytes -benchtime 1x ./internal/retrieval/
func BenchmarkStorageBytes(b *testing.B) {
	svc, c := benchService(b)
	co := newCorpus(4)
	chunks := 0
	for range b.N {
		n, _ := benchWorkspace(b, svc, c, co, 1000)
		chunks += n
	}
	ctx := context.Background()
	if _, err := svc.pool.Exec(ctx, "VACUUM ANALYZE documents, chunks, chunk_vectors"); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"documents", "chunks", "chunk_vectors"} {
		var size int64
		if err := svc.pool.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", table).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/float64(chunks), table+"-B/chunk")
	}
	b.ReportMetric(float64(chunks), "chunks")
}
