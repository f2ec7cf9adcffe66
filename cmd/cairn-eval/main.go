// Command cairn-eval measures search quality on the Cranfield collection through
// the real API: it stores the 1,400 abstracts with POST /v1/documents, runs the 225
// queries with POST /v1/search in each mode and prints nDCG@10 (binary relevance:
// codes 1–4 relevant) and recall.
//
// By default it starts its own replica on a fresh database (DATABASE_URL's server,
// database cairn_eval) with the local embedder and builtin index; -url and -key
// point it at a running replica instead. The API returns at most 50 results, so
// recall@50 comes from the API; recall@100 is measured through the same search
// service in process, which only the self-started replica allows.
//
//	go run ./cmd/cairn-eval -data ../shared/data/cranfield
package main

import (
	"bufio"
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
	"sort"
	"strconv"
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

type doc struct {
	ID, Title, Text string
}

type evalQuery struct {
	N    int // position in cran.qry, as cranqrel numbers them
	Text string
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cairn-eval", flag.ContinueOnError)
	data := fs.String("data", "../shared/data/cranfield", "directory with cran.all.1400, cran.qry and cranqrel")
	baseURL := fs.String("url", "", "a running replica (default: start one)")
	key := fs.String("key", "", "API key for -url")
	modes := fs.String("modes", "keyword,semantic,hybrid", "search modes to evaluate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	docs, err := readDocs(filepath.Join(*data, "cran.all.1400"))
	if err != nil {
		return err
	}
	queries, err := readQueries(filepath.Join(*data, "cran.qry"))
	if err != nil {
		return err
	}
	qrels, err := readQrels(filepath.Join(*data, "cranqrel"))
	if err != nil {
		return err
	}

	var svc *retrieval.Service
	var caller retrieval.Caller
	if *baseURL == "" {
		inst, err := start(ctx)
		if err != nil {
			return err
		}
		defer inst.stop()
		*baseURL, *key, svc, caller = inst.url, inst.key, inst.srv.Retrieval(), inst.caller
	}
	c := &client{base: strings.TrimRight(*baseURL, "/"), key: *key}

	began := time.Now()
	chunks := 0
	for i := 0; i < len(docs); i += 100 {
		batch := docs[i:min(i+100, len(docs))]
		var req struct {
			Documents []map[string]string `json:"documents"`
		}
		for _, d := range batch {
			req.Documents = append(req.Documents, map[string]string{"id": d.ID, "title": d.Title, "text": d.Text})
		}
		var resp struct {
			Documents []struct{ Chunks int } `json:"documents"`
		}
		if err := c.do("POST", "/v1/documents", req, &resp); err != nil {
			return fmt.Errorf("store documents %d–%d: %w", i+1, i+len(batch), err)
		}
		for _, d := range resp.Documents {
			chunks += d.Chunks
		}
	}
	fmt.Fprintf(out, "stored %d documents (%d chunks) in %v\n", len(docs), chunks, time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(out, "%-9s %8s %10s %11s %9s\n", "mode", "nDCG@10", "recall@50", "recall@100", "p50 ms")
	for _, mode := range strings.Split(*modes, ",") {
		var ndcg, r50, r100 float64
		var lat []time.Duration
		for _, q := range queries {
			rel := qrels[q.N]
			t := time.Now()
			var resp struct {
				Results []struct {
					DocumentID string `json:"document_id"`
				} `json:"results"`
			}
			if err := c.do("POST", "/v1/search", map[string]any{"query": q.Text, "mode": mode, "top_k": 50}, &resp); err != nil {
				return fmt.Errorf("query %d: %w", q.N, err)
			}
			lat = append(lat, time.Since(t))
			ranked := make([]string, len(resp.Results))
			for i, r := range resp.Results {
				ranked[i] = r.DocumentID
			}
			ranked = dedupe(ranked)
			ndcg += ndcgAt(ranked, rel, 10)
			r50 += recallAt(ranked, rel, 50)
			if svc != nil {
				rs, err := svc.Search(ctx, caller, retrieval.SearchInput{Query: q.Text, TopK: 300, Mode: retrieval.Mode(mode)})
				if err != nil {
					return err
				}
				ids := make([]string, len(rs))
				for i, r := range rs {
					ids[i] = r.DocumentID
				}
				r100 += recallAt(dedupe(ids), rel, 100)
			}
		}
		n := float64(len(queries))
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r100s := "n/a"
		if svc != nil {
			r100s = fmt.Sprintf("%.3f", r100/n)
		}
		fmt.Fprintf(out, "%-9s %8.3f %10.3f %11s %9.1f\n", mode, ndcg/n, r50/n, r100s, float64(lat[len(lat)/2].Microseconds())/1000)
	}
	return nil
}

// dedupe keeps each document's best chunk: the collection is judged per document.
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
	url, key string
	srv      *server.Server
	caller   retrieval.Caller
	stop     func()
}

// start runs a replica on a fresh cairn_eval database with an Enterprise workspace.
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
			return nil, errors.New("the replica did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pool := srv.Pool()
	u, ws, err := auth.NewService(pool).SignUp(ctx, "eval@example.com", "correct horse battery")
	if err != nil {
		cancel()
		return nil, err
	}
	if err := workspace.NewService(pool, cfg.Plans).SetPlan(ctx, ws.ID, plan.Enterprise, nil, "eval"); err != nil {
		cancel()
		return nil, err
	}
	k, err := apikey.NewService(pool, cfg.Plans, log).Create(ctx, ws.ID, &u.ID, "eval")
	if err != nil {
		cancel()
		return nil, err
	}
	return &instance{
		url: url, key: k.Secret, srv: srv,
		caller: retrieval.Caller{WorkspaceID: ws.ID, Plan: plan.Enterprise},
		stop:   func() { cancel(); <-done },
	}, nil
}

// readDocs parses cran.all.1400: .I id, .T title, .A, .B, .W abstract.
func readDocs(path string) ([]doc, error) {
	recs, err := readRecords(path)
	if err != nil {
		return nil, err
	}
	var docs []doc
	for _, r := range recs {
		text := strings.TrimSpace(r.fields["W"])
		if text == "" {
			text = strings.TrimSpace(r.fields["T"])
		}
		if text == "" {
			continue // 471 and 995 are empty
		}
		docs = append(docs, doc{ID: r.id, Title: oneLine(r.fields["T"]), Text: text})
	}
	return docs, nil
}

// readQueries parses cran.qry; queries are numbered by position, not by .I.
func readQueries(path string) ([]evalQuery, error) {
	recs, err := readRecords(path)
	if err != nil {
		return nil, err
	}
	qs := make([]evalQuery, len(recs))
	for i, r := range recs {
		qs[i] = evalQuery{N: i + 1, Text: oneLine(r.fields["W"])}
	}
	return qs, nil
}

type record struct {
	id     string
	fields map[string]string
}

func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs []record
	field := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, ".I ") {
			id := strings.TrimSpace(line[3:])
			if n, err := strconv.Atoi(id); err == nil {
				id = strconv.Itoa(n)
			}
			recs = append(recs, record{id: id, fields: map[string]string{}})
			field = ""
			continue
		}
		if len(line) == 2 && line[0] == '.' && strings.Contains("TABW", line[1:]) {
			field = line[1:]
			continue
		}
		if len(recs) > 0 && field != "" {
			recs[len(recs)-1].fields[field] += line + "\n"
		}
	}
	return recs, sc.Err()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// readQrels parses "query doc code" lines; codes 1–4 are relevant.
func readQrels(path string) (map[int]map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int]map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		q, err1 := strconv.Atoi(f[0])
		code, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		if out[q] == nil {
			out[q] = map[string]bool{}
		}
		if code >= 1 && code <= 4 {
			out[q][f[1]] = true
		}
	}
	return out, nil
}
