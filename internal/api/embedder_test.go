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

	// 320 one-chunk documents: five re-embedding batches of 64.
	topics := []string{"glaciers carve valleys", "sourdough needs wild yeast", "satellites orbit the earth", "tea leaves steep in hot water"}
	for i := 0; i < 320; i += 100 {
		var docs []map[string]string
		for j := i; j < min(i+100, 320); j++ {
			docs = append(docs, map[string]string{"id": fmt.Sprintf("d%03d", j), "text": fmt.Sprintf("Note %d: %s, item %d of the series.", j, topics[j%len(topics)], j)})
		}
		b, _ := json.Marshal(map[string]any{"documents": docs})
		call(t, a, "POST", "/v1/documents", acct.Key, string(b), 200, nil)
	}
	const query = `{"query":"how do glaciers carve valleys","mode":"semantic","top_k":10}`
	search := func(inst *servertest.Instance) ([]string, error) {
		req, _ := http.NewRequest("POST", inst.URL+"/v1/search", strings.NewReader(query))
		req.Header.Set("Authorization", "Bearer "+acct.Key)
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
	var (
		mu      sync.Mutex
		live    = a
		seen    [][]string
		errs    []error
		stopped = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopped:
				return
			default:
			}
			mu.Lock()
			inst := live
			mu.Unlock()
			if inst == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			got, err := search(inst)
			time.Sleep(5 * time.Millisecond) // a steady stream, not a flood
			mu.Lock()
			if err != nil {
				if live == inst { // a replica being stopped may refuse; only a live one counts
					errs = append(errs, err)
				}
			} else {
				seen = append(seen, got)
			}
			mu.Unlock()
		}
	}()

	br := a.NewBrowser(t)
	br.LogIn(acct.Email, servertest.Password)
	resp, body := br.Submit("/dashboard/settings/embedder", "/dashboard/settings/embedder", url.Values{
		"provider": {"custom"}, "base_url": {fake.BaseURL()}, "model": {"text-embedding-3-small"},
		"dimensions": {"64"}, "api_key": {endpointKey},
	})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choosing the endpoint: %d %s", resp.StatusCode, body)
	}
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
	progress := func() (done, total int64) {
		err := pool.QueryRow(context.Background(), `SELECT done, total FROM workspace_embedders WHERE workspace_id = $1 AND slot = 'pending'`, acct.WorkspaceID).Scan(&done, &total)
		if err == pgx.ErrNoRows {
			return -1, -1
		}
		if err != nil {
			t.Fatal(err)
		}
		return done, total
	}
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
	mu.Lock()
	live = nil
	mu.Unlock()
	a.Stop()
	halfway, total := progress()
	if halfway <= 0 || halfway >= total {
		t.Fatalf("after stopping the first replica: %d of %d done; want the job halfway", halfway, total)
	}

	b := servertest.StartOn(t, dbURL, e)
	mu.Lock()
	live = b
	mu.Unlock()
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
	close(stopped)
	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("%d searches failed during the switch, e.g. %v", len(errs), errs[0])
	}
	old, fresh := strings.Join(before, ","), strings.Join(after, ",")
	if old == fresh {
		t.Fatal("the new embedder ranks exactly as the old one: the test cannot tell them apart")
	}
	counts := map[string]int{}
	for _, s := range seen {
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
