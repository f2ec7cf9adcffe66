// Command cairn-eval measures search quality on test collections through the real
// API, beside a plain BM25 baseline computed over the same texts.
//
// -data is a collection directory or a directory of them, in Cranfield's layout
// (cran.all.1400, cran.qry, cranqrel) or BEIR's (corpus.jsonl, queries.jsonl,
// qrels/test.tsv). For each collection it stores the documents (title and text)
// with POST /v1/documents in a workspace of their own, runs every judged query
// with POST /v1/search in each mode, and prints nDCG@10 (binary relevance,
// results counted per document: a document's best chunk), recall@100, the median
// latency and how many queries returned nothing. The baseline is Okapi BM25 (k1
// 1.2, b 0.75, Lucene's 33 stop words, no stemming) over whole documents.
//
// By default it starts its own replica on a fresh database (DATABASE_URL's server,
// database cairn_eval) with the local embedder and builtin index; -url and -key
// point it at a running replica instead (one collection). The API returns at most
// 50 results, so recall@100 comes from the same search service in process, which
// only the self-started replica allows; against -url it is recall@50.
//
//	go run ./cmd/cairn-eval -data path/to/collections
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/server"
	"github.com/cairn-dev/cairn/internal/workspace"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cairn-eval:", err)
		os.Exit(1)
	}
}

// baseline names the BM25 row in the tables.
const baseline = "bm25"

// The API's limits (see the README): documents per POST /v1/documents, results per search.
const (
	apiBatch = 100
	apiTopK  = 50
)

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cairn-eval", flag.ContinueOnError)
	data := fs.String("data", "../shared/data", "a test collection's directory, or a directory of them")
	only := fs.String("collections", "", "comma-separated collection names to evaluate (default: every one under -data)")
	baseURL := fs.String("url", "", "a running replica (default: start one)")
	key := fs.String("key", "", "API key for -url")
	modes := fs.String("modes", "keyword,semantic,hybrid", "search modes to evaluate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dirs, err := findCollections(*data)
	if err != nil {
		return err
	}
	if *only != "" {
		want := strings.Split(*only, ",")
		dirs = slices.DeleteFunc(dirs, func(d string) bool { return !slices.Contains(want, baseName(d)) })
		if len(dirs) == 0 {
			return fmt.Errorf("no collection named %s under %s", *only, *data)
		}
	}
	if *baseURL != "" && len(dirs) > 1 {
		return errors.New("-url evaluates one collection (its key's workspace holds it): name it with -collections")
	}
	systems := append([]string{baseline}, strings.Split(*modes, ",")...)

	var inst *instance
	if *baseURL == "" {
		if inst, err = start(ctx); err != nil {
			return err
		}
		defer inst.stop()
	}
	var results []collectionResult
	for _, dir := range dirs {
		coll, err := loadCollection(dir)
		if err != nil {
			return err
		}
		t := tenant{client: &client{base: strings.TrimRight(*baseURL, "/"), key: *key}}
		if inst != nil {
			if t, err = inst.tenant(ctx, coll.Name); err != nil {
				return err
			}
		}
		res, err := evaluate(ctx, out, coll, t, systems)
		if err != nil {
			return fmt.Errorf("%s: %w", coll.Name, err)
		}
		results = append(results, res)
	}
	recallAtK := 100
	if inst == nil {
		recallAtK = 50
	}
	summarize(out, results, systems, recallAtK)
	return nil
}

func baseName(dir string) string { return filepath.Base(dir) }

// scores are one system's figures on one collection.
type scores struct {
	NDCG, Recall float64
	P50          time.Duration
	Empty        int // queries that returned nothing
}

type collectionResult struct {
	Name    string
	Docs    int
	Queries int
	By      map[string]scores
}

// tenant is a workspace to store one collection in, reached through the API and,
// when the replica runs in process, through its search service.
type tenant struct {
	client *client
	svc    *retrieval.Service
	caller retrieval.Caller
}

func evaluate(ctx context.Context, out io.Writer, coll *collection, t tenant, systems []string) (collectionResult, error) {
	res := collectionResult{Name: coll.Name, Docs: len(coll.Docs), Queries: len(coll.Queries), By: map[string]scores{}}
	began := time.Now()
	chunks := 0
	for i := 0; i < len(coll.Docs); i += apiBatch {
		batch := coll.Docs[i:min(i+apiBatch, len(coll.Docs))]
		var req struct {
			Documents []map[string]string `json:"documents"`
		}
		for _, d := range batch {
			req.Documents = append(req.Documents, map[string]string{"id": d.ID, "title": d.Title, "text": d.Text})
		}
		var resp struct {
			Documents []struct{ Chunks int } `json:"documents"`
		}
		if err := t.client.do("POST", "/v1/documents", req, &resp); err != nil {
			return res, fmt.Errorf("store documents %d–%d: %w", i+1, i+len(batch), err)
		}
		for _, d := range resp.Documents {
			chunks += d.Chunks
		}
	}
	took := time.Since(began)
	fmt.Fprintf(out, "%s: stored %d documents (%d chunks) in %v (%.0f chunks/s); %d judged queries\n",
		coll.Name, len(coll.Docs), chunks, took.Round(time.Millisecond), float64(chunks)/took.Seconds(), len(coll.Queries))

	bm := newBM25(coll.Docs)
	recallAtK := 100
	if t.svc == nil {
		recallAtK = 50
	}
	for _, sys := range systems {
		var s scores
		var lat []time.Duration
		for _, q := range coll.Queries {
			rel := coll.Qrels[q.ID]
			var top, deep []string
			start := time.Now()
			if sys == baseline {
				deep = bm.search(q.Text, recallAtK)
				top = deep
			} else {
				var resp struct {
					Results []struct {
						DocumentID string `json:"document_id"`
					} `json:"results"`
				}
				if err := t.client.do("POST", "/v1/search", map[string]any{"query": q.Text, "mode": sys, "top_k": apiTopK}, &resp); err != nil {
					return res, fmt.Errorf("query %s: %w", q.ID, err)
				}
				for _, r := range resp.Results {
					top = append(top, r.DocumentID)
				}
				top = dedupe(top)
				deep = top
			}
			lat = append(lat, time.Since(start))
			if sys != baseline && t.svc != nil {
				// A document has several chunks: ask for enough to fill 100 documents.
				rs, err := t.svc.Search(ctx, t.caller, retrieval.SearchInput{Query: q.Text, TopK: 3 * recallAtK, Mode: retrieval.Mode(sys)})
				if err != nil {
					return res, err
				}
				deep = deep[:0:0]
				for _, r := range rs {
					deep = append(deep, r.DocumentID)
				}
				deep = dedupe(deep)
			}
			if len(top) == 0 {
				s.Empty++
			}
			s.NDCG += ndcgAt(top, rel, 10)
			s.Recall += recallAt(deep, rel, recallAtK)
		}
		n := float64(len(coll.Queries))
		s.NDCG /= n
		s.Recall /= n
		slices.Sort(lat)
		s.P50 = lat[len(lat)/2]
		res.By[sys] = s
		fmt.Fprintf(out, "  %-9s nDCG@10 %.3f  recall@%d %.3f  p50 %6.1f ms  empty %d\n",
			sys, s.NDCG, recallAtK, s.Recall, float64(s.P50.Microseconds())/1000, s.Empty)
	}
	return res, nil
}

// summarize prints one table per measure: a row per system, a column per
// collection, the mean over collections and its ratio to the baseline's.
func summarize(out io.Writer, results []collectionResult, systems []string, recallAtK int) {
	if len(results) == 0 {
		return
	}
	measures := []struct {
		name string
		get  func(scores) float64
	}{
		{"nDCG@10", func(s scores) float64 { return s.NDCG }},
		{fmt.Sprintf("recall@%d", recallAtK), func(s scores) float64 { return s.Recall }},
	}
	for _, m := range measures {
		fmt.Fprintf(out, "\n| %s |", m.name)
		for _, r := range results {
			fmt.Fprintf(out, " %s |", baseName(r.Name))
		}
		fmt.Fprintln(out, " mean | ÷ bm25 |")
		fmt.Fprint(out, "|---|")
		for range results {
			fmt.Fprint(out, "---|")
		}
		fmt.Fprintln(out, "---|---|")
		var baseMean float64
		for _, r := range results {
			baseMean += m.get(r.By[baseline]) / float64(len(results))
		}
		for _, sys := range systems {
			fmt.Fprintf(out, "| %s |", sys)
			var mean float64
			for _, r := range results {
				v := m.get(r.By[sys])
				mean += v / float64(len(results))
				mark := ""
				if sys != baseline && v < m.get(r.By[baseline]) {
					mark = " ↓" // below the baseline on this collection
				}
				fmt.Fprintf(out, " %.3f%s |", v, mark)
			}
			fmt.Fprintf(out, " %.3f | %.3f |\n", mean, mean/baseMean)
		}
	}
	fmt.Fprint(out, "\n| queries with no result |")
	for _, r := range results {
		fmt.Fprintf(out, " %s (%d) |", baseName(r.Name), r.Queries)
	}
	fmt.Fprintln(out)
	fmt.Fprint(out, "|---|")
	for range results {
		fmt.Fprint(out, "---|")
	}
	fmt.Fprintln(out)
	for _, sys := range systems {
		fmt.Fprintf(out, "| %s |", sys)
		for _, r := range results {
			fmt.Fprintf(out, " %d |", r.By[sys].Empty)
		}
		fmt.Fprintln(out)
	}
}

// dedupe keeps each document's first (best) chunk: the collections are judged per document.
func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func ndcgAt(ranked []string, rel map[string]bool, k int) float64 {
	var dcg, idcg float64
	for i := 0; i < k && i < len(ranked); i++ {
		if rel[ranked[i]] {
			dcg += 1 / math.Log2(float64(i+2))
		}
	}
	for i := 0; i < k && i < len(rel); i++ {
		idcg += 1 / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0
	}
	return dcg / idcg
}

func recallAt(ranked []string, rel map[string]bool, k int) float64 {
	if len(rel) == 0 {
		return 0
	}
	found := 0
	for i := 0; i < k && i < len(ranked); i++ {
		if rel[ranked[i]] {
			found++
		}
	}
	return float64(found) / float64(len(rel))
}

type client struct {
	base, key string
}

func (c *client) do(method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, rb)
	}
	return json.Unmarshal(rb, out)
}

type instance struct {
	url  string
	cfg  config.Config
	log  *slog.Logger
	srv  *server.Server
	stop func()
}

// start runs a replica on a fresh cairn_eval database.
func start(ctx context.Context) (*instance, error) {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = config.DefaultDatabaseURL
	}
	admin, err := pgx.Connect(ctx, db.WithDatabase(base, "postgres"))
	if err != nil {
		return nil, err
	}
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS cairn_eval WITH (FORCE)")
	admin.Close(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	env := map[string]string{"DATABASE_URL": db.WithDatabase(base, "cairn_eval"), "BASE_URL": url, "LISTEN_ADDR": ln.Addr().String()}
	for _, k := range []string{"LOCAL_EMBEDDING_DIM", "VECTOR_CACHE_MB"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, nil)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	sctx, cancel := context.WithCancel(ctx)
	srv, err := server.New(sctx, cfg, log)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 500 {
			cancel()
			<-done
			return nil, errors.New("the replica did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &instance{url: url, cfg: cfg, log: log, srv: srv, stop: func() { cancel(); <-done }}, nil
}

// tenant signs up an account for one collection, on the Enterprise plan (no
// document cap, no quota), and makes it a key.
func (inst *instance) tenant(ctx context.Context, name string) (tenant, error) {
	pool := inst.srv.Pool()
	_, ws, err := auth.NewService(pool).SignUp(ctx, "eval-"+sanitize(name)+"@example.com", "correct horse battery staple")
	if err != nil {
		return tenant{}, err
	}
	if err := workspace.NewService(pool, inst.cfg.Plans).SetPlan(ctx, ws.ID, plan.Enterprise, nil, "eval"); err != nil {
		return tenant{}, err
	}
	// Made as an operator would (no creator), so no verified email is needed.
	k, err := apikey.NewService(pool, inst.cfg.Plans, inst.log).Create(ctx, ws.ID, nil, "eval")
	if err != nil {
		return tenant{}, err
	}
	return tenant{
		client: &client{base: inst.url, key: k.Secret},
		svc:    inst.srv.Retrieval(),
		caller: retrieval.Caller{WorkspaceID: ws.ID, Plan: plan.Enterprise},
	}, nil
}

// sanitize keeps what an email's local part may hold.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}
