package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestReembeddingSurvivesAKilledReplica chooses a workspace's own endpoint on the
// dashboard, stops the replica running the re-embedding halfway (its job is
// cancelled mid-request), starts another, and checks that the job finishes there;
// that every search during all of it answers with the old vectors' results or
// the new ones', never nothing and never a mix; that GET /v1/me names the
// embedder throughout; and that the old vectors are deleted afterwards.
func TestReembeddingSurvivesAKilledReplica(t *testing.T) {
	const endpointKey = "sk-workspace-endpoint-key-7f3a"
	fake := openaitest.Start(t, endpointKey)
	fake.Delay = 150 * time.Millisecond
	encKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	e := env(map[string]string{"ENCRYPTION_KEY": encKey, "CUSTOM_EMBEDDER_ALLOW_PRIVATE": "true"})
	dbURL := dbtest.New(t)
	a := servertest.StartOn(t, dbURL, e)
	acct := a.NewAccount(t, plan.Pro)

	ingestNotes(t, a.URL, acct.Key)
	search := func(inst *servertest.Instance) ([]string, error) { return searchIDs(inst.URL, acct.Key) }
	me := func(inst *servertest.Instance) map[string]any {
		var out struct {
			Embedder map[string]any `json:"embedder"`
		}
		call(t, inst, "GET", "/v1/me", acct.Key, "", 200, &out)
		return out.Embedder
	}
	before, err := search(a)
	if err != nil || len(before) == 0 {
		t.Fatalf("search before the switch: %v, %v", before, err)
	}
	if got := me(a); got["provider"] != "builtin" || got["model"] != "cairn-local-v2-3072" {
		t.Fatalf("/v1/me embedder before: %v", got)
	}

	// Searches run all along, through whichever replica is up.
	watch := watchSearches(acct.Key, a.URL)
	br := a.NewBrowser(t)
	br.LogIn(acct.Email, servertest.Password)
	chooseEndpoint(t, br, fake.BaseURL(), endpointKey)
	_, page := br.Get("/dashboard/settings/embedder")
	if strings.Contains(page, endpointKey) {
		t.Fatal("the settings page shows the stored key")
	}

	// Halfway: some batches stored, not all. Then the endpoint hangs and the
	// replica is stopped with its job in the middle of a request.
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	progress := func() (done, total int64) { return embedderProgress(t, pool, acct.WorkspaceID) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		done, total := progress()
		if done > 0 && done < total {
			break
		}
		if time.Now().After(deadline) || done < 0 {
			t.Fatalf("never halfway: done %d of %d", done, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fake.Fail(openaitest.Failure{Hang: true}, openaitest.Failure{Hang: true}, openaitest.Failure{Hang: true})
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		got := me(a) // cached for up to two seconds
		if got["switching"] != nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("/v1/me during the switch names no switch: %v", got)
		}
	}
	_, docsPage := br.Get("/dashboard/documents")
	if !strings.Contains(docsPage, `data-testid="reembedding"`) {
		t.Fatal("the Documents page shows no re-embedding progress")
	}
	watch.setLive("")
	a.Stop()
	halfway, total := progress()
	if halfway <= 0 || halfway >= total {
		t.Fatalf("after stopping the first replica: %d of %d done; want the job halfway", halfway, total)
	}

	b := servertest.StartOn(t, dbURL, e)
	watch.setLive(b.URL)
	deadline = time.Now().Add(90 * time.Second)
	for {
		if done, _ := progress(); done < 0 {
			break // the pending row became the active one
		}
		if time.Now().After(deadline) {
			done, total := progress()
			t.Fatalf("the second replica did not finish: %d of %d", done, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after, err := search(b)
	if err != nil || len(after) == 0 {
		t.Fatalf("search after the switch: %v, %v", after, err)
	}
	watch.check(t, before, after)

	if strings.Contains(b.Logs(), `"retrieval: workspace switched embedder"`) == false {
		t.Fatal("the second replica did not make the switch")
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		var models []string
		rows, err := pool.Query(context.Background(), `SELECT DISTINCT model FROM chunk_vectors WHERE workspace_id = $1`, acct.WorkspaceID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var m string
			_ = rows.Scan(&m)
			models = append(models, m)
		}
		rows.Close()
		if len(models) == 1 && strings.HasPrefix(models[0], "custom/text-embedding-3-small@64#") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old vectors were not deleted: models %v", models)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := me(b); got["provider"] != "custom" || !strings.HasPrefix(fmt.Sprint(got["model"]), "custom/text-embedding-3-small@64#") || got["switching"] != nil {
		t.Fatalf("/v1/me embedder after: %v", got)
	}
	var sealed []byte
	if err := pool.QueryRow(context.Background(), `SELECT api_key FROM workspace_embedders WHERE workspace_id = $1`, acct.WorkspaceID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(endpointKey)) || len(sealed) == 0 {
		t.Fatal("the endpoint key is stored in plain text")
	}
	for name, logs := range map[string]string{"first": a.Logs(), "second": b.Logs()} {
		if strings.Contains(logs, endpointKey) {
			t.Fatalf("the %s replica logged the endpoint key", name)
		}
	}
}

// ingestNotes stores 320 one-chunk notes on four topics through base: five
// re-embedding batches of 64.
func ingestNotes(t *testing.T, base, key string) {
	t.Helper()
	topics := []string{"glaciers carve valleys", "sourdough needs wild yeast", "satellites orbit the earth", "tea leaves steep in hot water"}
	for i := 0; i < 320; i += 100 {
		var docs []map[string]string
		for j := i; j < min(i+100, 320); j++ {
			docs = append(docs, map[string]string{"id": fmt.Sprintf("d%03d", j), "text": fmt.Sprintf("Note %d: %s, item %d of the series.", j, topics[j%len(topics)], j)})
		}
		b, _ := json.Marshal(map[string]any{"documents": docs})
		req, _ := http.NewRequest("POST", base+"/v1/documents", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := servertest.ReadBody(t, resp); resp.StatusCode != 200 {
			t.Fatalf("ingest: %d %s", resp.StatusCode, body)
		}
	}
}

// searchIDs runs a semantic search through base and returns its results as
// "document:score", to compare whole result lists.
func searchIDs(base, key string) ([]string, error) {
	const query = `{"query":"how do glaciers carve valleys","mode":"semantic","top_k":10}`
	req, _ := http.NewRequest("POST", base+"/v1/search", strings.NewReader(query))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("search: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Results []struct {
			DocumentID string  `json:"document_id"`
			Score      float64 `json:"score"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	var ids []string
	for _, r := range out.Results {
		ids = append(ids, fmt.Sprintf("%s:%.4f", r.DocumentID, r.Score))
	}
	return ids, nil
}

// embedderProgress reads the pending embedder's done and total; -1, -1 once there
// is none (the switch made it the active one).
func embedderProgress(t *testing.T, pool *pgxpool.Pool, workspaceID uuid.UUID) (done, total int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT done, total FROM workspace_embedders WHERE workspace_id = $1 AND slot = 'pending'`, workspaceID).Scan(&done, &total)
	if err == pgx.ErrNoRows {
		return -1, -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return done, total
}

// searchWatch searches all along, through whichever replica is live, and keeps
// every answer.
type searchWatch struct {
	mu      sync.Mutex
	live    string // base URL; "" while no replica is up
	seen    [][]string
	errs    []error
	stopped chan struct{}
	wg      sync.WaitGroup
}

func watchSearches(key, base string) *searchWatch {
	w := &searchWatch{live: base, stopped: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			select {
			case <-w.stopped:
				return
			default:
			}
			w.mu.Lock()
			base := w.live
			w.mu.Unlock()
			if base == "" {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			got, err := searchIDs(base, key)
			time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
			w.mu.Lock()
			if err != nil {
				if w.live == base { // a replica being stopped may refuse; only a live one counts
					w.errs = append(w.errs, err)
				}
			} else {
				w.seen = append(w.seen, got)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// setLive sends the searches to base from now on ("": none).
func (w *searchWatch) setLive(base string) {
	w.mu.Lock()
	w.live = base
	w.mu.Unlock()
}

// check stops the searches and fails unless every one answered, with the
// results before the switch or after it: never nothing, never a mix.
func (w *searchWatch) check(t *testing.T, before, after []string) {
	t.Helper()
	close(w.stopped)
	w.wg.Wait()
	if len(w.errs) > 0 {
		t.Fatalf("%d searches failed during the switch, e.g. %v", len(w.errs), w.errs[0])
	}
	old, fresh := strings.Join(before, ","), strings.Join(after, ",")
	if old == fresh {
		t.Fatal("the new embedder ranks exactly as the old one: the test cannot tell them apart")
	}
	counts := map[string]int{}
	for _, s := range w.seen {
		switch got := strings.Join(s, ","); got {
		case old:
			counts["old"]++
		case fresh:
			counts["new"]++
		default:
			t.Fatalf("a search during the switch returned neither the old nor the new result:\n got %s\n old %s\n new %s", got, old, fresh)
		}
	}
	t.Logf("searches during the switch: %d with the old vectors, %d with the new", counts["old"], counts["new"])
}

// chooseEndpoint chooses, on the dashboard, the workspace's own endpoint at
// baseURL (text-embedding-3-small shortened to 64 dimensions) with key.
func chooseEndpoint(t *testing.T, br *servertest.Browser, baseURL, key string) {
	t.Helper()
	resp, body := br.Submit("/dashboard/settings/embedder", "/dashboard/settings/embedder", url.Values{
		"provider": {"custom"}, "base_url": {baseURL}, "model": {"text-embedding-3-small"},
		"dimensions": {"64"}, "api_key": {key},
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choosing the endpoint: %d %s", resp.StatusCode, body)
	}
}
