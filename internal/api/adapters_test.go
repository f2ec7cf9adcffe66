package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone/pineconetest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

const (
	e2eServerKey   = "sk-e2e-server-key-SECRET-0001"
	e2eCallerKey   = "sk-e2e-caller-key-SECRET-0002"
	e2ePineconeKey = "pcsk-e2e-SECRET-0003"
)

// withAdapters starts a replica configured for OpenAI and Pinecone, both doubles
// that speak the real protocols. serverKey may be "" for a server without a key.
func withAdapters(t *testing.T, serverKey string) (*servertest.Instance, *openaitest.Server, *pineconetest.Server) {
	t.Helper()
	oa := openaitest.Start(t, e2eServerKey, e2eCallerKey)
	pc := pineconetest.Start(t, e2ePineconeKey)
	env := map[string]string{
		"OPENAI_BASE_URL":     oa.BaseURL(),
		"PINECONE_API_KEY":    e2ePineconeKey,
		"PINECONE_INDEX_HOST": pc.Host(),
	}
	if serverKey != "" {
		env["OPENAI_API_KEY"] = serverKey
	}
	return servertest.Start(t, env), oa, pc
}

// doWith sends an API request with extra headers.
func doWith(t *testing.T, inst *servertest.Instance, method, path, key, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, inst.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// vectorsOf returns the ids of the vectors Pinecone holds for a document.
func vectorsOf(pc *pineconetest.Server, acct servertest.Account, doc string) []string {
	var ids []string
	for id, v := range pc.Namespace(acct.WorkspaceID.String()) {
		if v.Metadata["document_id"] == doc {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestOpenAIAndPinecone(t *testing.T) {
	inst, oa, pc := withAdapters(t, e2eServerKey)
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[
		{"id":"tides","title":"Tides","text":"The Moon's gravity pulls the oceans and makes the tides rise and fall twice a day.","metadata":{"lang":"en"}},
		{"id":"bread","title":"Sourdough","text":"A sourdough starter is flour and water fermented by wild yeast.","metadata":{"lang":"fr"}}
	]}`, http.StatusOK, nil)

	t.Run("VectorsLiveInTheWorkspacesNamespace", func(t *testing.T) {
		stored := pc.Namespace(acct.WorkspaceID.String())
		if len(stored) < 2 || len(vectorsOf(pc, acct, "tides")) == 0 || len(vectorsOf(pc, acct, "bread")) == 0 {
			t.Fatalf("namespace holds %v", stored)
		}
		for id, v := range stored {
			if v.Metadata["model"] != "openai/text-embedding-3-small" || len(v.Values) != 64 {
				t.Fatalf("vector %s: model %v, %d values", id, v.Metadata["model"], len(v.Values))
			}
		}
		if reqs := oa.Requests(); len(reqs) == 0 || reqs[0].Authorization != "Bearer "+e2eServerKey {
			t.Fatalf("OpenAI requests %+v, want embeddings with the server's key", reqs)
		}
	})

	t.Run("SemanticSearchWithFilterGoesThroughPinecone", func(t *testing.T) {
		before := pc.Calls("Query")
		var res searchResults
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"oceans tides moon","mode":"semantic","filter":{"lang":"en"}}`, http.StatusOK, &res)
		if len(res.Results) == 0 || res.Results[0].DocumentID != "tides" {
			t.Fatalf("results %+v, want tides first", res.Results)
		}
		for _, r := range res.Results {
			if r.DocumentID != "tides" {
				t.Fatalf("filter lang=en let %s through", r.DocumentID)
			}
		}
		if pc.Calls("Query") == before {
			t.Fatal("Pinecone was not queried")
		}
	})

	t.Run("ReplaceLeavesNoStaleVector", func(t *testing.T) {
		old := vectorsOf(pc, acct, "tides")
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[
			{"id":"tides","title":"Tides","text":"Spring tides follow the new and full moon.","metadata":{"lang":"en"}}
		]}`, http.StatusOK, nil)
		now := vectorsOf(pc, acct, "tides")
		for _, id := range old {
			for _, n := range now {
				if id == n {
					t.Fatalf("old vector %s kept after replace (old %v, now %v)", id, old, now)
				}
			}
		}
		for _, mode := range []string{"semantic", "hybrid", "keyword"} {
			var res searchResults
			call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"gravity pulls the oceans twice a day","mode":"`+mode+`","top_k":50}`, http.StatusOK, &res)
			for _, r := range res.Results {
				if strings.Contains(r.Text, "gravity") {
					t.Fatalf("%s: stale chunk found: %+v", mode, r)
				}
			}
		}
	})

	t.Run("AnswerIsGenerated", func(t *testing.T) {
		oa.Reply = func(ms []openaitest.Message) string { return "Spring tides follow the moon [1]." }
		var ans struct {
			Answer    string `json:"answer"`
			Mode      string `json:"mode"`
			Citations []struct {
				DocumentID string `json:"document_id"`
			} `json:"citations"`
		}
		call(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"when are spring tides?"}`, http.StatusOK, &ans)
		if ans.Mode != "generative" || ans.Answer != "Spring tides follow the moon [1]." || len(ans.Citations) == 0 {
			t.Fatalf("answer %+v", ans)
		}
	})

	t.Run("AnswerStreams", func(t *testing.T) {
		oa.Reply = func([]openaitest.Message) string { return "Spring tides follow the moon [1]." }
		resp, body := doWith(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"when are spring tides?","stream":true}`, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if strings.Count(body, "event: delta") < 2 || !strings.Contains(body, "event: citations") || !strings.Contains(body, "event: done") {
			t.Fatalf("stream:\n%s", body)
		}
	})

	t.Run("DeleteEmptiesPinecone", func(t *testing.T) {
		call(t, inst, "DELETE", "/v1/documents/tides", acct.Key, "", http.StatusNoContent, nil)
		if ids := vectorsOf(pc, acct, "tides"); len(ids) != 0 {
			t.Fatalf("vectors left after delete: %v", ids)
		}
		if len(vectorsOf(pc, acct, "bread")) == 0 {
			t.Fatal("delete took another document's vectors")
		}
	})

	t.Run("OpenAIOutageIs503AndStoresNothing", func(t *testing.T) {
		for range 4 { // every attempt the adapter makes
			oa.Fail(openaitest.Failure{Status: http.StatusInternalServerError})
		}
		resp, body := doWith(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"late","text":"Written while OpenAI was down."}]}`, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"unavailable"`) {
			t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		call(t, inst, "GET", "/v1/documents/late", acct.Key, "", http.StatusNotFound, nil)
	})

	t.Run("PineconeOutageIs503AndStoresNothing", func(t *testing.T) {
		for range 3 { // every attempt the adapter makes
			pc.Fail("Upsert", status.Error(codes.Unavailable, "down"))
		}
		resp, body := doWith(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"late","text":"Written while Pinecone was down."}]}`, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		call(t, inst, "GET", "/v1/documents/late", acct.Key, "", http.StatusNotFound, nil)
	})

	t.Run("PineconeDeleteOutageStillReplacesAndDeletes", func(t *testing.T) {
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"kite","text":"Kites fly on windy beaches."}]}`, http.StatusOK, nil)
		for range 6 { // every attempt of two deletes
			pc.Fail("Delete", status.Error(codes.Unavailable, "down"))
		}
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"kite","text":"Gliders soar over mountain ridges."}]}`, http.StatusOK, nil)
		var got searchResults
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"kites windy beaches","mode":"semantic","top_k":50}`, http.StatusOK, &got)
		for _, r := range got.Results {
			if strings.Contains(r.Text, "Kites") {
				t.Fatalf("a stale vector of the replaced text was returned: %+v", r)
			}
		}
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"gliders mountain ridges","mode":"semantic"}`, http.StatusOK, &got)
		if len(got.Results) == 0 || got.Results[0].DocumentID != "kite" {
			t.Fatalf("the replacement is not found by semantic search: %+v", got.Results)
		}
		for range 3 {
			pc.Fail("Delete", status.Error(codes.Unavailable, "down"))
		}
		call(t, inst, "DELETE", "/v1/documents/kite", acct.Key, "", http.StatusNoContent, nil)
		call(t, inst, "GET", "/v1/documents/kite", acct.Key, "", http.StatusNotFound, nil)
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"gliders mountain ridges","mode":"semantic","top_k":50}`, http.StatusOK, &got)
		for _, r := range got.Results {
			if r.DocumentID == "kite" {
				t.Fatalf("a deleted document was returned: %+v", r)
			}
		}
	})

	if logs := inst.Logs(); strings.Contains(logs, e2eServerKey) || strings.Contains(logs, e2ePineconeKey) {
		t.Fatal("a key reached the logs")
	}
}

func TestCallerOpenAIKey(t *testing.T) {
	inst, oa, _ := withAdapters(t, "")
	acct := inst.NewAccount(t, plan.Free)
	byok := map[string]string{"OpenAI-API-Key": e2eCallerKey}
	resp, body := doWith(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"tides","text":"The Moon makes the tides."}]}`, byok)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("store: %d %s", resp.StatusCode, body)
	}

	t.Run("AnswerGeneratedWithTheCallersKey", func(t *testing.T) {
		resp, body := doWith(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"what makes the tides?"}`, byok)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"mode":"generative"`) {
			t.Fatalf("answer: %d %s", resp.StatusCode, body)
		}
		reqs := oa.Requests()
		if len(reqs) == 0 {
			t.Fatal("OpenAI never called")
		}
		for _, r := range reqs {
			if r.Authorization != "Bearer "+e2eCallerKey {
				t.Fatalf("%s sent %q, want the caller's key", r.Path, r.Authorization)
			}
		}
	})

	t.Run("WithoutAKeyTheAnswerIsExtractive", func(t *testing.T) {
		var ans struct {
			Mode string `json:"mode"`
		}
		call(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"what makes the tides?"}`, http.StatusOK, &ans)
		if ans.Mode != "extractive" {
			t.Fatalf("mode %q, want extractive: the server has no key", ans.Mode)
		}
	})

	t.Run("RejectedKeyIs400NamingTheHeader", func(t *testing.T) {
		const bad = "sk-e2e-rejected-key-SECRET-0004"
		resp, body := doWith(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"what makes the tides?"}`,
			map[string]string{"OpenAI-API-Key": bad})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "OpenAI-API-Key") || strings.Contains(body, bad) {
			t.Fatalf("answer with a rejected key: %d %s", resp.StatusCode, body)
		}
		if strings.Contains(inst.Logs(), bad) {
			t.Fatal("the rejected key reached the logs")
		}
	})

	if strings.Contains(inst.Logs(), e2eCallerKey) {
		t.Fatal("the caller's key reached the logs")
	}
}

func TestReindexRefillsAnEmptyPineconeFromPostgreSQL(t *testing.T) {
	first, oa, _ := withAdapters(t, e2eServerKey)
	acct := first.NewAccount(t, plan.Pro)
	call(t, first, "POST", "/v1/documents", acct.Key, `{"documents":[
		{"id":"tides","text":"The Moon makes the tides.","metadata":{"topic":"sea"}},
		{"id":"bread","text":"Sourdough needs a lively starter.","metadata":{"topic":"food"}}]}`, http.StatusOK, nil)

	// A second replica on the same database, but with an empty Pinecone index: the
	// namespace was lost.
	fresh := pineconetest.Start(t, e2ePineconeKey)
	second := servertest.StartOn(t, first.DatabaseURL, map[string]string{
		"OPENAI_API_KEY": e2eServerKey, "OPENAI_BASE_URL": oa.BaseURL(),
		"PINECONE_API_KEY": e2ePineconeKey, "PINECONE_INDEX_HOST": fresh.Host(),
	})
	search := func() []string {
		var got searchResults
		call(t, second, "POST", "/v1/search", acct.Key, `{"query":"what makes the tides","mode":"semantic","filter":{"topic":"sea"}}`, http.StatusOK, &got)
		var ids []string
		for _, r := range got.Results {
			ids = append(ids, r.DocumentID)
		}
		return ids
	}
	if ids := search(); len(ids) != 0 {
		t.Fatalf("an empty index found %v", ids)
	}
	n, err := second.Server.Retrieval().Reindex(context.Background(), acct.WorkspaceID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || len(fresh.Namespace(acct.WorkspaceID.String())) != 2 {
		t.Fatalf("reindex wrote %d vectors, the namespace holds %d; want 2 (one chunk per document)", n, len(fresh.Namespace(acct.WorkspaceID.String())))
	}
	if ids := search(); len(ids) != 1 || ids[0] != "tides" {
		t.Fatalf("after reindex, a filtered semantic search found %v, want [tides]", ids)
	}
}
