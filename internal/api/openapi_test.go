package api_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestOpenAPIDescribesEveryRoute exercises each documented operation and checks
// that it answers with a documented status, and that every /v1 route is documented.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)

	resp := inst.Do(t, "GET", "/v1/openapi.json", "", "")
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json without a key: %d", resp.StatusCode)
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}

	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"d1","text":"Documented text."}]}`, 200, nil)
	bodies := map[string]string{
		"POST /v1/documents": `{"documents":[{"id":"d2","text":"More text."}]}`,
		"POST /v1/search":    `{"query":"documented text"}`,
		"POST /v1/answer":    `{"question":"what is documented?"}`,
	}
	type operation struct {
		method, path string
		raw          json.RawMessage
	}
	var all []operation
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method != "parameters" {
				all = append(all, operation{strings.ToUpper(method), path, raw})
			}
		}
	}
	// Deletes go last, so every operation can succeed on the document stored above.
	sort.Slice(all, func(i, j int) bool {
		if (all[i].method == "DELETE") != (all[j].method == "DELETE") {
			return all[j].method == "DELETE"
		}
		return all[i].method+all[i].path < all[j].method+all[j].path
	})
	documented := map[string]bool{}
	for _, o := range all {
		m, path := o.method, o.path
		var op struct{ Responses map[string]any }
		if err := json.Unmarshal(o.raw, &op); err != nil {
			t.Fatal(err)
		}
		documented[m+" "+path] = true
		{
			t.Run(m+" "+path, func(t *testing.T) {
				url := strings.ReplaceAll(path, "{id}", "d1")
				key := acct.Key
				if path == "/v1/openapi.json" {
					key = ""
				}
				resp := inst.Do(t, m, url, key, bodies[m+" "+path])
				servertest.ReadBody(t, resp)
				if _, ok := op.Responses[strconv.Itoa(resp.StatusCode)]; !ok || resp.StatusCode >= 300 {
					t.Fatalf("status %d; want a documented success (%v)", resp.StatusCode, keys(op.Responses))
				}
			})
		}
	}
	for _, r := range inst.Server.Handler().(*echo.Echo).Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") || r.Method == http.MethodOptions || r.Method == echo.RouteNotFound {
			continue
		}
		p := strings.ReplaceAll(r.Path, ":id", "{id}")
		if !documented[r.Method+" "+p] {
			t.Errorf("route %s %s is not in the OpenAPI document", r.Method, p)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
