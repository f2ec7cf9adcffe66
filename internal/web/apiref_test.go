package web_test

import (
	"encoding/json"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestAPIReferenceShowsTheWholeDocument reads the OpenAPI document the API serves and
// finds every operation, response status, parameter, schema and property of it on
// /docs, so an endpoint added to the document appears on the page without anyone
// writing it there.
func TestAPIReferenceShowsTheWholeDocument(t *testing.T) {
	inst := servertest.Start(t, nil)
	resp := inst.Do(t, http.MethodGet, "/v1/openapi.json", "", "")
	raw := servertest.ReadBody(t, resp)
	var doc struct {
		Info  struct{ Title, Description string }
		Paths map[string]map[string]json.RawMessage
		// Components' schemas with their properties, one level deep.
		Components struct {
			Schemas map[string]struct {
				Description string
				Properties  map[string]struct{ Description string }
			}
		}
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}

	b := inst.NewBrowser(t)
	status, page := b.Get("/docs")
	if status != http.StatusOK {
		t.Fatalf("GET /docs: %d", status)
	}
	text := html.UnescapeString(page)
	if !strings.Contains(text, doc.Info.Title) || !strings.Contains(text, doc.Info.Description) {
		t.Errorf("the page lacks the document's title or description")
	}
	ops := 0
	for path, item := range doc.Paths {
		for method, rawOp := range item {
			if method == "parameters" {
				continue
			}
			ops++
			var op struct {
				Summary     string
				Description string
				Parameters  []struct{ Name, Ref string }
				Responses   map[string]json.RawMessage
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				t.Fatal(err)
			}
			key := strings.ToUpper(method) + " " + path
			section := operationSection(t, page, key)
			st := html.UnescapeString(section)
			if !strings.Contains(st, op.Summary) || !strings.Contains(st, op.Description) {
				t.Errorf("%s: summary or description missing", key)
			}
			for code := range op.Responses {
				if !strings.Contains(section, ">"+code+"<") {
					t.Errorf("%s: response %s missing", key, code)
				}
			}
			for _, p := range op.Parameters {
				if p.Name != "" && !strings.Contains(section, p.Name) {
					t.Errorf("%s: parameter %s missing", key, p.Name)
				}
			}
		}
	}
	if got := strings.Count(page, `data-operation="`); got != ops {
		t.Errorf("the page shows %d operations; the document has %d", got, ops)
	}
	for name, s := range doc.Components.Schemas {
		if !strings.Contains(page, `id="schema-`+name+`"`) {
			t.Errorf("schema %s has no section", name)
		}
		for prop, p := range s.Properties {
			if !strings.Contains(text, prop) || !strings.Contains(text, p.Description) {
				t.Errorf("schema %s: property %s or its description missing", name, prop)
			}
		}
	}
	if strings.Contains(page, "$ref") || strings.Contains(page, "#/components/") {
		t.Errorf("the page shows raw references instead of links")
	}
	// Every link to a schema leads to a schema's section.
	for _, m := range regexp.MustCompile(`href="#(schema-[^"]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(page, `id="`+m[1]+`"`) {
			t.Errorf("link to #%s leads nowhere", m[1])
		}
	}
}

// TestAPIReferenceExamplesWork sends each example's body, as the page shows it, to
// the API with a real key: an example a reader copies must be accepted.
func TestAPIReferenceExamplesWork(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	_, page := b.Get("/docs")
	re := regexp.MustCompile(`(?s)<pre id="example-[^"]*"[^>]*>(.*?)</pre>`)
	examples := re.FindAllStringSubmatch(page, -1)
	if len(examples) == 0 {
		t.Fatal("no examples on /docs")
	}
	curlRe := regexp.MustCompile(`^curl(?: -X ([A-Z]+))? '([^']+)'`)
	bodyRe := regexp.MustCompile(`-d '([^']*)'`)
	tried := 0
	for _, m := range examples {
		cmd := html.UnescapeString(m[1])
		c := curlRe.FindStringSubmatch(cmd)
		if c == nil {
			t.Fatalf("example is not a curl command: %s", cmd)
		}
		method, url := c[1], c[2]
		if method == "" {
			method = http.MethodGet
		}
		if !strings.HasPrefix(url, inst.URL+"/") {
			t.Fatalf("example %s calls %s, not this server", cmd, url)
		}
		if strings.Contains(url, "{") || method == http.MethodDelete {
			continue // needs an id the reader fills in
		}
		if strings.HasSuffix(url, "/v1/device/token") {
			continue // needs the device_code of a sign-in someone approved
		}
		body := ""
		if d := bodyRe.FindStringSubmatch(cmd); d != nil {
			body = d[1]
		}
		key := ""
		if strings.Contains(cmd, "$CAIRN_API_KEY") {
			key = acct.Key
		}
		resp := inst.Do(t, method, strings.TrimPrefix(url, inst.URL), key, body)
		got := servertest.ReadBody(t, resp)
		if resp.StatusCode >= 300 {
			t.Errorf("%s %s with %s: %d %s", method, url, body, resp.StatusCode, got)
		}
		tried++
	}
	if tried < 3 {
		t.Fatalf("only %d examples could be tried", tried)
	}
}

// operationSection returns the HTML of one operation's section of /docs.
func operationSection(t *testing.T, page, key string) string {
	t.Helper()
	start := strings.Index(page, `data-operation="`+key+`"`)
	if start < 0 {
		t.Fatalf("no section for %s", key)
	}
	rest := page[start:]
	if end := strings.Index(rest[1:], `data-operation="`); end >= 0 {
		return rest[:end+1]
	}
	return rest
}
