package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/retrieval/querycache"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestQueryEmbeddingsSharedThroughRedis: two replicas sharing Redis embed a query
// once between them, however often and wherever it is searched; with Redis gone,
// searches still answer, each embedding its query itself.
func TestQueryEmbeddingsSharedThroughRedis(t *testing.T) {
	oa := openaitest.Start(t, "sk-server")
	rd := redistest.Start(t)
	dbURL := dbtest.New(t)
	env := map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": oa.BaseURL(), "REDIS_URL": rd.URL, "QUERY_CACHE_TTL": "1h"}
	a := servertest.StartOn(t, dbURL, env)
	b := servertest.StartOn(t, dbURL, env)
	acct := a.NewAccount(t, plan.Pro)
	if resp := a.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[
		{"id":"kites","title":"Kites","text":"Kites fly best on windy beaches in spring."},
		{"id":"bread","title":"Bread","text":"Sourdough needs a starter and a slow rise."}]}`); status(t, resp) != http.StatusOK {
		t.Fatalf("POST /v1/documents = %d", resp.StatusCode)
	}
	embedded := func(query string) int {
		n := 0
		for _, r := range oa.Requests() {
			if strings.HasSuffix(r.Path, "/embeddings") && slices.Equal(r.Inputs, []string{query}) {
				n++
			}
		}
		return n
	}
	search := func(r *servertest.Instance, query string) string {
		t.Helper()
		resp := r.Do(t, "POST", "/v1/search", acct.Key, `{"query":"`+query+`","mode":"semantic"}`)
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("search %q on %s = %d: %s", query, r.URL, resp.StatusCode, body)
		}
		return body
	}

	first := search(a, "windy beaches")
	if !strings.Contains(first, `"kites"`) {
		t.Fatalf("search found %s, want kites", first)
	}
	if got := search(b, "windy beaches"); got != first {
		t.Fatalf("the second replica, from the cached vector, answered\n%s\nthe first\n%s", got, first)
	}
	search(a, "windy beaches")
	search(b, "windy beaches")
	if n := embedded("windy beaches"); n != 1 {
		t.Fatalf("the query was embedded %d times by two replicas sharing Redis, want 1", n)
	}

	// The entry: model and SHA-256 of the text as key, 4 bytes a dimension, the TTL set.
	opts, _ := redis.ParseURL(rd.URL)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	key := querycache.Key("openai/text-embedding-3-small", "windy beaches")
	raw, err := rdb.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatalf("no cache entry %s: %v", key, err)
	}
	if v, ok := querycache.Decode(raw); !ok || len(v) != oa.Dimensions {
		t.Fatalf("cache entry of %d bytes, want %d float32s", len(raw), oa.Dimensions)
	}
	if ttl := rdb.TTL(context.Background(), key).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("cache entry TTL %s, want QUERY_CACHE_TTL (1h)", ttl)
	}
	if strings.Contains(key, "windy") {
		t.Fatalf("the key %s holds the query's text", key)
	}

	// Redis down: searches still answer; each replica embeds for itself.
	rd.Stop()
	for _, r := range []*servertest.Instance{a, b} {
		if got := search(r, "sourdough starter"); !strings.Contains(got, `"bread"`) {
			t.Fatalf("with Redis down, search found %s, want bread", got)
		}
	}
	if n := embedded("sourdough starter"); n != 2 {
		t.Fatalf("with Redis down, two searches embedded the query %d times, want 2", n)
	}
}
