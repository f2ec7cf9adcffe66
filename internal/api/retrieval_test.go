package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// call sends a request and decodes the JSON answer into out (when not nil),
// failing unless the status is want.
func call(t *testing.T, inst *servertest.Instance, method, path, key, body string, want int, out any) {
	t.Helper()
	resp := inst.Do(t, method, path, key, body)
	b := servertest.ReadBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

type searchResults struct {
	Results []struct {
		DocumentID string         `json:"document_id"`
		Chunk      int            `json:"chunk"`
		Score      float64        `json:"score"`
		Text       string         `json:"text"`
		Title      string         `json:"title"`
		URL        string         `json:"url"`
		Metadata   map[string]any `json:"metadata"`
	} `json:"results"`
}

func TestDocumentsRoundTrip(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[
		{"id":"tides","title":"Tides","url":"https://example.com/tides","text":"The Moon's gravity pulls the oceans and makes the tides rise and fall twice a day.","metadata":{"lang":"en","stars":4}},
		{"id":"bread","title":"Sourdough","text":"A sourdough starter is flour and water fermented by wild yeast and lactobacilli."}
	]}`, http.StatusOK, nil)
	for _, mode := range []string{"keyword", "semantic", "hybrid"} {
		var res searchResults
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"why do tides happen","mode":"`+mode+`"}`, http.StatusOK, &res)
		if len(res.Results) == 0 || res.Results[0].DocumentID != "tides" {
			t.Fatalf("%s: results %+v, want tides first", mode, res.Results)
		}
	}
	call(t, inst, "DELETE", "/v1/documents/tides", acct.Key, "", http.StatusNoContent, nil)
	var res searchResults
	call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusOK, &res)
	for _, r := range res.Results {
		if r.DocumentID == "tides" {
			t.Fatalf("deleted document still found: %+v", res.Results)
		}
	}
}
