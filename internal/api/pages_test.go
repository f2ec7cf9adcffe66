package api_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

type upsertJSON struct {
	Documents []struct {
		ID        string `json:"id"`
		Chunks    int    `json:"chunks"`
		Unchanged bool   `json:"unchanged"`
		Status    string `json:"status"`
		Reason    string `json:"reason"`
	} `json:"documents"`
}

func pageJSON(t *testing.T, file, url string) string {
	t.Helper()
	b, err := os.ReadFile("../retrieval/testdata/pages/" + file)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := json.Marshal(string(b))
	u, _ := json.Marshal(url)
	return `{"html":` + string(h) + `,"url":` + string(u) + `}`
}

// embeddingCalls counts the embeddings requests the OpenAI double received.
func embeddingCalls(oa *openaitest.Server) int {
	n := 0
	for _, r := range oa.Requests() {
		if len(r.Inputs) > 0 {
			n++
		}
	}
	return n
}

// TestSavingPagesAsHTML sends pages the way the extension does, through a server
// that embeds with OpenAI (a double that counts the calls): the page's readable
// text and title are stored under an id from its canonical URL, and saving the
// same pages again answers "unchanged" without calling the embedder.
func TestSavingPagesAsHTML(t *testing.T) {
	oa := openaitest.Start(t, e2eServerKey)
	inst := servertest.Start(t, env(map[string]string{"OPENAI_BASE_URL": oa.BaseURL(), "OPENAI_API_KEY": e2eServerKey}))
	acct := inst.NewAccount(t, plan.Pro)
	batch := `{"documents":[` + pageJSON(t, "article.html", "https://fieldnotebook.example/2024/03/why-glaciers-are-blue/") + `,` +
		pageJSON(t, "docs.html", "https://docs.harbor.example/cli/3.2/configuring-retries.html") + `,` +
		pageJSON(t, "forum.html", "https://forum.breadbakers.example/t/sourdough-starter-smells-like-nail-polish-remover/48213?u=crumbshot") + `]}`

	var first upsertJSON
	call(t, inst, "POST", "/v1/documents", acct.Key, batch, 200, &first)
	if len(first.Documents) != 3 {
		t.Fatalf("upsert = %+v", first)
	}
	for _, d := range first.Documents {
		if d.Status != "indexed" || d.Unchanged || d.Chunks == 0 || !strings.HasPrefix(d.ID, "url_") {
			t.Fatalf("first save: %+v", d)
		}
	}
	calls := embeddingCalls(oa)
	if calls == 0 {
		t.Fatal("the first save embedded nothing")
	}
	var doc struct {
		Title, Text, Status string
	}
	call(t, inst, "GET", "/v1/documents/"+first.Documents[1].ID, acct.Key, "", 200, &doc)
	if doc.Title != "Configuring retries — Harbor CLI 3.2 documentation" || doc.Status != "indexed" ||
		!strings.Contains(doc.Text, "A 429 response is retried") || strings.Contains(doc.Text, "Built with Sphinx") {
		t.Fatalf("stored docs page: title %q, status %q, text:\n%s", doc.Title, doc.Status, doc.Text)
	}

	var again upsertJSON
	call(t, inst, "POST", "/v1/documents", acct.Key, batch, 200, &again)
	for i, d := range again.Documents {
		if !d.Unchanged || d.ID != first.Documents[i].ID || d.Chunks != first.Documents[i].Chunks || d.Status != "indexed" {
			t.Fatalf("second save of %d: %+v", i, d)
		}
	}
	if got := embeddingCalls(oa); got != calls {
		t.Fatalf("saving unchanged pages made %d embedding calls", got-calls)
	}

	t.Run("PageWithoutText", func(t *testing.T) {
		var out upsertJSON
		call(t, inst, "POST", "/v1/documents", acct.Key,
			`{"documents":[{"html":"<html><body><div id=\"app\"></div></body></html>","url":"https://app.example/"}]}`, 200, &out)
		if d := out.Documents[0]; d.Status != "failed" || !strings.Contains(d.Reason, "no readable text") {
			t.Fatalf("page without text: %+v", d)
		}
		var list struct {
			Documents []struct{ ID, Status, Reason string }
		}
		call(t, inst, "GET", "/v1/documents?limit=100", acct.Key, "", 200, &list)
		found := false
		for _, d := range list.Documents {
			found = found || (d.ID == out.Documents[0].ID && d.Status == "failed" && d.Reason != "")
		}
		if !found {
			t.Fatalf("the failed page is not listed with its status: %+v", list)
		}
	})
	t.Run("MalformedPages", func(t *testing.T) {
		for _, tc := range []struct{ body, field string }{
			{`{"documents":[{"html":"<p>x</p>"}]}`, "documents[0].url"},
			{`{"documents":[{"html":"<p>x</p>","url":"file:///etc/passwd"}]}`, "documents[0].url"},
			{`{"documents":[{"html":"<p>x</p>","text":"x","url":"https://a.example/"}]}`, "documents[0].html"},
			{`{"documents":[{"html":"  ","url":"https://a.example/"}]}`, "documents[0].html"},
			{`{"documents":[{"html":7,"url":"https://a.example/"}]}`, "documents[0].html"},
			{`{"documents":[{"url":"https://a.example/"}]}`, "documents[0].text"},
			{`{"documents":[{"text":"a","url":"https://a.example/x?utm_source=1"},{"text":"b","url":"https://a.example/x"}]}`, "documents[1].url"},
		} {
			resp := inst.Do(t, "POST", "/v1/documents", acct.Key, tc.body)
			var e apiError
			_ = json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &e)
			if resp.StatusCode != 400 || !strings.HasPrefix(e.Error.Message, tc.field) {
				t.Fatalf("%s: %d %+v; want 400 naming %s", tc.body, resp.StatusCode, e, tc.field)
			}
		}
	})
}
