package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// exportLines reads GET /v1/export with key, one raw JSON line each.
func exportLines(t *testing.T, inst *servertest.Instance, key string) []string {
	t.Helper()
	resp := inst.Do(t, "GET", "/v1/export", key, "")
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/export: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q, want application/x-ndjson", ct)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// TestExportRoundTrips stores a collection, exports it with GET /v1/export, imports
// the lines unchanged through POST /v1/documents into a fresh workspace, and finds
// that every search (each mode, with and without a filter) answers the same there.
func TestExportRoundTrips(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	from, to := inst.NewAccount(t, plan.Pro), inst.NewAccount(t, plan.Pro)

	subjects := []string{"glaciers", "tides", "sourdough", "volcanoes", "orchids", "comets", "bees", "rivers"}
	const n = 230
	var batch []string
	for i := range n {
		s := subjects[i%len(subjects)]
		doc := map[string]any{
			"id":    fmt.Sprintf("doc-%03d", i),
			"title": fmt.Sprintf("Notes on %s, part %d", s, i),
			"url":   fmt.Sprintf("https://example.com/%s/%d", s, i),
			"text": fmt.Sprintf("Field note %d about %s. Observation %d: the %s we studied behaved as in sample %d; "+
				"weather was %s and the team counted %d specimens. \"Quotes\", <tags> & unicode: é ✓.",
				i, s, i*7, s, i*13, []string{"dry", "wet", "windy"}[i%3], i%17),
			"metadata": map[string]any{"subject": s, "n": i, "even": i%2 == 0},
		}
		b, _ := json.Marshal(doc)
		batch = append(batch, string(b))
		if len(batch) == 100 || i == n-1 {
			call(t, inst, "POST", "/v1/documents", from.Key, `{"documents":[`+strings.Join(batch, ",")+`]}`, 200, nil)
			batch = nil
		}
	}

	lines := exportLines(t, inst, from.Key)
	if len(lines) != n {
		t.Fatalf("exported %d lines, want %d", len(lines), n)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var d map[string]any
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if len(d) != 5 || d["text"] == "" || d["metadata"] == nil {
			t.Fatalf("line %s: want exactly id, title, url, metadata and text", l)
		}
		seen[d["id"].(string)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct documents exported, want %d", len(seen), n)
	}

	// The lines go back exactly as exported, 100 a request.
	for start := 0; start < len(lines); start += 100 {
		end := min(start+100, len(lines))
		call(t, inst, "POST", "/v1/documents", to.Key, `{"documents":[`+strings.Join(lines[start:end], ",")+`]}`, 200, nil)
	}
	if again := exportLines(t, inst, to.Key); strings.Join(again, "\n") != strings.Join(lines, "\n") {
		t.Fatal("the imported workspace exports differently from the original")
	}

	filtered := 0
	queries := []string{"glaciers", "windy weather specimens", "sourdough sample", "comets observation 42", "unicode quotes tags"}
	for _, mode := range []string{"keyword", "semantic", "hybrid"} {
		for _, q := range queries {
			for _, filter := range []string{"", `,"filter":{"subject":{"$in":["bees","tides"]},"even":true}`} {
				body := fmt.Sprintf(`{"query":%q,"mode":%q,"top_k":10%s}`, q, mode, filter)
				var a, b searchResults
				call(t, inst, "POST", "/v1/search", from.Key, body, 200, &a)
				call(t, inst, "POST", "/v1/search", to.Key, body, 200, &b)
				if len(a.Results) == 0 && filter == "" {
					t.Fatalf("%s: no results in the original workspace", body)
				}
				if filter != "" {
					filtered += len(a.Results)
				}
				if len(a.Results) != len(b.Results) {
					t.Fatalf("%s: %d results, %d after the round trip", body, len(a.Results), len(b.Results))
				}
				for i := range a.Results {
					x, y := a.Results[i], b.Results[i]
					xm, _ := json.Marshal(x.Metadata)
					ym, _ := json.Marshal(y.Metadata)
					if x.DocumentID != y.DocumentID || x.Chunk != y.Chunk || x.Text != y.Text || x.Title != y.Title || x.URL != y.URL ||
						string(xm) != string(ym) || math.Abs(x.Score-y.Score) > 1e-6 {
						t.Fatalf("%s: result %d differs after the round trip:\n%+v\n%+v", body, i, x, y)
					}
				}
			}
		}
	}
	if filtered == 0 {
		t.Fatal("no filtered search found anything, so filters were not compared")
	}
}

// TestExportNeedsDocumentsRead: the export reads documents, so it needs that scope
// and no other, and shows one workspace's documents only.
func TestExportNeedsDocumentsRead(t *testing.T) {
	// The Free plan's real quota, counted exactly; room for the keys made here.
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_API_KEYS": "5"})
	acct, other := inst.NewAccount(t, plan.Free), inst.NewAccount(t, plan.Free)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"mine","text":"Only mine."}]}`, 200, nil)
	call(t, inst, "POST", "/v1/documents", other.Key, `{"documents":[{"id":"theirs","text":"Only theirs."}]}`, 200, nil)

	searchOnly := inst.NewKey(t, acct, apikey.Spec{Name: "search only", Scopes: apikey.Search})
	resp := inst.Do(t, "GET", "/v1/export", searchOnly, "")
	if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "documents:read") {
		t.Fatalf("a key without documents:read: %d %s, want 403 naming the scope", resp.StatusCode, body)
	}
	readOnly := inst.NewKey(t, acct, apikey.Spec{Name: "read only", Scopes: apikey.DocumentsRead})
	lines := exportLines(t, inst, readOnly)
	if len(lines) != 1 || !strings.Contains(lines[0], `"id":"mine"`) {
		t.Fatalf("export %q, want the one document of this workspace", lines)
	}
	// Not billable: a Free workspace's monthly count is unchanged by exports.
	var u struct {
		Requests struct{ Used int } `json:"requests"`
	}
	call(t, inst, "GET", "/v1/usage", acct.Key, "", 200, &u)
	if u.Requests.Used != 1 {
		t.Fatalf("requests used %d after one upload and two exports, want 1", u.Requests.Used)
	}
}
