package api_test

import (
	"encoding/json"
	"net/http"
	"os"
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
	// TestMain checks every response against openapi.json: it must be what is served.
	if file, err := os.ReadFile("openapi.json"); err != nil || string(file) != body {
		t.Fatalf("GET /v1/openapi.json differs from openapi.json (%v)", err)
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
	// A device sign-in approved at /activate, so that its poll succeeds.
	d := startDevice(t, inst, "openapi")
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	if status, body := decide(t, b, d.UserCode, "approve", acct.WorkspaceID.String()); status != 200 {
		t.Fatalf("approve the device: %d %s", status, body)
	}
	bodies := map[string]string{
		"POST /v1/documents":    `{"documents":[{"id":"d2","text":"More text."}]}`,
		"POST /v1/search":       `{"query":"documented text"}`,
		"POST /v1/answer":       `{"question":"what is documented?"}`,
		"POST /v1/device/code":  `{"client_name":"openapi"}`,
		"POST /v1/device/token": `{"device_code":"` + d.DeviceCode + `"}`,
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
				if path == "/v1/openapi.json" || strings.HasPrefix(path, "/v1/device/") {
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

// TestOpenAPIDescribesEveryResponseFully walks the document: every response of
// every operation declares the headers every /v1 response carries (and Retry-After
// where it is sent), every operation declares the failures any request to it can
// meet, and every response object lists all its fields as required, since the API
// always sends them. A route or response added without them fails here.
func TestOpenAPIDescribesEveryResponseFully(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// resolve follows a local $ref.
	resolve := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		for m != nil && m["$ref"] != nil {
			var cur any = doc
			for _, part := range strings.Split(strings.TrimPrefix(m["$ref"].(string), "#/"), "/") {
				cur = cur.(map[string]any)[part]
			}
			m, _ = cur.(map[string]any)
		}
		return m
	}
	var checkSchema func(where string, s map[string]any)
	checkSchema = func(where string, s map[string]any) {
		if s == nil {
			return
		}
		if props, ok := s["properties"].(map[string]any); ok {
			required := map[string]bool{}
			list, _ := s["required"].([]any)
			for _, r := range list {
				required[r.(string)] = true
			}
			for name, p := range props {
				if !required[name] {
					t.Errorf("%s: field %q is not required, but every response has it", where, name)
				}
				checkSchema(where+"."+name, resolve(p))
			}
			if s["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties is not false, so an undescribed field would pass", where)
			}
		}
		if items, ok := s["items"]; ok {
			checkSchema(where+"[]", resolve(items))
		}
	}
	for path, item := range doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			op := o.(map[string]any)
			name := strings.ToUpper(method) + " " + path
			responses := op["responses"].(map[string]any)
			want := []string{"429", "500"}
			if sec, ok := op["security"].([]any); !ok || len(sec) > 0 { // needs a key
				want = append(want, "401", "503")
			}
			if op["requestBody"] != nil {
				want = append(want, "400", "413", "415")
			}
			for _, code := range want {
				if responses[code] == nil {
					t.Errorf("%s does not declare %s, which any request to it can meet", name, code)
				}
			}
			for code, r := range responses {
				resp := resolve(r)
				headers, _ := resp["headers"].(map[string]any)
				for _, h := range []string{"X-Request-ID", "RateLimit", "RateLimit-Policy"} {
					if headers[h] == nil {
						t.Errorf("%s %s does not declare the %s header", name, code, h)
					}
				}
				if (code == "429" || code == "503") && headers["Retry-After"] == nil {
					t.Errorf("%s %s does not declare Retry-After", name, code)
				}
				content, _ := resp["content"].(map[string]any)
				if mt, ok := content["application/json"].(map[string]any); ok && name != "GET /v1/openapi.json" {
					checkSchema(name+" "+code, resolve(mt["schema"]))
				}
			}
		}
	}
}
