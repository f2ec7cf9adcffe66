package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/internal/loadgen"
)

type meteredOptions struct {
	bin, unmeteredBin string
	dbServer          string
	documents         int
	concurrency       int
	duration          time.Duration
	rounds            int
	json              bool
}

// meteredResult is the -metered report: the same POST /v1/search on a Free
// workspace, through a normal build and through one built with -tags nometering.
type meteredResult struct {
	Metered     loadgen.Result `json:"metered"`
	Unmetered   loadgen.Result `json:"unmetered"`
	P99Ratio    float64        `json:"p99_ratio"`        // metered p99 ÷ unmetered p99
	RPSRatio    float64        `json:"throughput_ratio"` // metered ÷ unmetered req/s
	Documents   int            `json:"documents"`
	Concurrency int            `json:"concurrency"`
	CPUs        int            `json:"cpus"`
	// Server CPU time per request (see ratioResult).
	CPUMetered   time.Duration `json:"server_cpu_per_request_metered_ns"`
	CPUUnmetered time.Duration `json:"server_cpu_per_request_unmetered_ns"`
	LoadBefore   float64       `json:"load_average_before"`
	LoadAfter    float64       `json:"load_average_after"`
}

func (r meteredResult) String() string {
	out := fmt.Sprintf("metered:\n%s\nunmetered (-tags nometering):\n%s\n\nPOST /v1/search, Free workspace (quota lifted), %d documents, %d connections, %d CPUs\n"+
		"p99 metered ÷ unmetered = %.1f ÷ %.1f ms = %.2f; throughput %.0f ÷ %.0f req/s = %.2f",
		r.Metered, r.Unmetered, r.Documents, r.Concurrency, r.CPUs,
		ms(r.Metered.Latency.P99), ms(r.Unmetered.Latency.P99), r.P99Ratio, r.Metered.RPS, r.Unmetered.RPS, r.RPSRatio)
	if r.CPUMetered > 0 && r.CPUUnmetered > 0 {
		out += fmt.Sprintf("\nserver CPU per request: metered %.1f µs, unmetered %.1f µs", float64(r.CPUMetered)/1e3, float64(r.CPUUnmetered)/1e3)
	}
	if r.LoadBefore >= 0 {
		out += fmt.Sprintf("\nload average %.1f before, %.1f after, on %d CPUs", r.LoadBefore, r.LoadAfter, r.CPUs)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runMetered starts both builds on scratch databases, stores the same documents
// in a Free workspace of each (its quota and rate limit lifted so that they are
// checked but never reached), and runs the same search against each in
// alternating rounds.
func runMetered(ctx context.Context, o meteredOptions, stdout io.Writer) error {
	loadBefore := loadAverage()
	env := []string{
		"CAIRN_PLAN_FREE_RATE_PER_MINUTE=1000000000",
		"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH=1000000000",
		"CAIRN_PLAN_FREE_DOCUMENTS=unlimited",
	}
	docs := syntheticDocuments(o.documents)
	query := []byte(`{"query":"` + strings.Join(docs[len(docs)/2].words[3:7], " ") + `","top_k":10}`)
	var targets [2]loadgen.Options
	var pids [2]int
	for i, bin := range []string{o.bin, o.unmeteredBin} {
		srv, err := startServer(ctx, bin, o.dbServer, "free", env...)
		if err != nil {
			return err
		}
		defer srv.stop()
		auth := http.Header{"Authorization": {"Bearer " + srv.key}, "Content-Type": {"application/json"}}
		if err := store(srv.base, auth, docs); err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		targets[i] = loadgen.Options{URL: srv.base + "/v1/search", Method: http.MethodPost, Header: auth, Body: query, Concurrency: o.concurrency}
		pids[i] = srv.pid
	}
	for _, t := range targets { // warm up
		t.Duration = 2 * time.Second
		if _, err := loadgen.Run(ctx, t); err != nil {
			return err
		}
	}
	var results [2][]loadgen.Result
	var cpu [2]time.Duration
	for range max(1, o.rounds) {
		for i, t := range targets {
			t.Duration = o.duration
			before := processCPU(pids[i])
			r, err := loadgen.Run(ctx, t)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cpu[i] += processCPU(pids[i]) - before
			results[i] = append(results[i], r)
		}
	}
	res := meteredResult{Metered: merge(results[0]), Unmetered: merge(results[1]), Documents: o.documents,
		Concurrency: o.concurrency, CPUs: runtime.NumCPU(), LoadBefore: loadBefore, LoadAfter: loadAverage()}
	if res.Metered.OK() != res.Metered.Requests || res.Unmetered.OK() != res.Unmetered.Requests {
		return fmt.Errorf("some responses were not 2xx, the figures would mislead:\n%s", res)
	}
	res.P99Ratio = float64(res.Metered.Latency.P99) / float64(res.Unmetered.Latency.P99)
	res.RPSRatio = res.Metered.RPS / res.Unmetered.RPS
	if res.Metered.Requests > 0 && res.Unmetered.Requests > 0 {
		res.CPUMetered = cpu[0] / time.Duration(res.Metered.Requests)
		res.CPUUnmetered = cpu[1] / time.Duration(res.Unmetered.Requests)
	}
	return print(stdout, o.json, res)
}

type syntheticDoc struct {
	id    string
	words []string
}

// syntheticDocuments returns n documents of 150 to 400 words drawn, Zipf-like,
// from a fixed vocabulary: the same documents on every run.
func syntheticDocuments(n int) []syntheticDoc {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := make([]string, 5000)
	for i := range vocab {
		var b strings.Builder
		for range 4 + r.IntN(6) {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
		vocab[i] = b.String()
	}
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(vocab)-1))
	docs := make([]syntheticDoc, n)
	for i := range docs {
		words := make([]string, 150+r.IntN(250))
		for j := range words {
			words[j] = vocab[zipf.Uint64()]
		}
		docs[i] = syntheticDoc{id: fmt.Sprintf("doc-%05d", i), words: words}
	}
	return docs
}

// store sends docs through POST /v1/documents in batches of 100.
func store(base string, h http.Header, docs []syntheticDoc) error {
	for i := 0; i < len(docs); i += 100 {
		type item struct {
			ID    string `json:"id"`
			Title string `json:"title"`
			Text  string `json:"text"`
		}
		var batch []item
		for _, d := range docs[i:min(i+100, len(docs))] {
			batch = append(batch, item{ID: d.id, Title: strings.Join(d.words[:5], " "), Text: strings.Join(d.words, " ")})
		}
		body, _ := json.Marshal(map[string]any{"documents": batch})
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/documents", bytes.NewReader(body))
		req.Header = h.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST /v1/documents: %d %s", resp.StatusCode, b)
		}
	}
	return nil
}
