package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestNoRouteReachesAnotherWorkspace walks every /v1 and dashboard route the router
// has, as another workspace (its API key on /v1, its session on the dashboard),
// with every path parameter and the usual form fields naming the victim's things:
// no answer shows the victim's data and nothing of the victim's changes. A route
// added later is walked too, without anyone listing it here.
func TestNoRouteReachesAnotherWorkspace(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_PRO_RATE_PER_MINUTE": "100000"})
	victim, attacker := inst.NewAccount(t, plan.Pro), inst.NewAccount(t, plan.Pro)
	const marker = "Zanzibarmarker" // a word only the victim's document holds
	docText := "The heron nests by the quarry every spring. " + marker
	resp := inst.Do(t, "POST", "/v1/documents", victim.Key, `{"documents":[{"id":"victim-doc","title":"Heron","text":"`+docText+`","metadata":{"owner":"victim"}}]}`)
	if body := servertest.ReadBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("store the victim's document: %d %s", resp.StatusCode, body)
	}
	var me struct {
		Key struct{ ID string } `json:"key"`
	}
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, inst.Do(t, "GET", "/v1/me", victim.Key, ""))), &me); err != nil || me.Key.ID == "" {
		t.Fatalf("the victim's key id: %v", err)
	}
	// What a path parameter or a form field may be set to: each of the victim's ids.
	victimIDs := []string{"victim-doc", me.Key.ID, victim.WorkspaceID.String(), victim.UserID.String()}
	// What must never appear in an answer to the attacker.
	secrets := []string{marker, victim.Key, victim.Key[:12], victim.Email}

	b := inst.NewBrowser(t)
	b.LogIn(attacker.Email, servertest.Password)
	csrf := b.CSRF("/dashboard/keys")
	param := regexp.MustCompile(`:[a-z_]+`)

	walked := map[string]bool{}
	for _, r := range inst.Server.Handler().(*echo.Echo).Routes() {
		api, dash := strings.HasPrefix(r.Path, "/v1/"), strings.HasPrefix(r.Path, "/dashboard")
		if (!api && !dash) || r.Method == echo.RouteNotFound || r.Method == http.MethodOptions {
			continue
		}
		walked[r.Method+" "+r.Path] = true
		for _, id := range victimIDs {
			path := param.ReplaceAllString(r.Path, url.PathEscape(id))
			var status int
			var body string
			switch {
			case api:
				reqBody := ""
				if r.Method == http.MethodPost {
					reqBody = apiBody(r.Path, id)
				}
				resp := inst.Do(t, r.Method, path, attacker.Key, reqBody)
				status, body = resp.StatusCode, servertest.ReadBody(t, resp)
			case r.Method == http.MethodGet:
				status, body = b.Get(path + "?q=heron+quarry&id=" + url.QueryEscape(id))
			default:
				form := url.Values{"_csrf": {csrf}}
				for _, f := range []string{"id", "key_id", "user_id", "workspace_id", "document_id"} {
					form.Set(f, id)
				}
				var resp *http.Response
				resp, body = b.Post(path, form)
				status = resp.StatusCode
			}
			if status >= 500 {
				t.Errorf("%s %s as another workspace: %d", r.Method, path, status)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Errorf("%s %s as another workspace shows the victim's %q", r.Method, path, s)
				}
			}
		}
	}
	// A walk whose session ended half way would have tried the later routes as nobody.
	if status, _ := b.Get("/dashboard/keys"); status != http.StatusOK {
		t.Fatalf("the attacker's session no longer works after the walk (%d)", status)
	}
	for _, route := range []string{"GET /v1/documents/:id", "DELETE /v1/documents/:id", "POST /v1/search", "POST /dashboard/keys/:id/revoke", "POST /dashboard/documents/delete"} {
		if !walked[route] {
			t.Fatalf("the walk missed %s: is the router's list read right?", route)
		}
	}

	t.Run("TheVictimsThingsAreUntouched", func(t *testing.T) {
		resp := inst.Do(t, "GET", "/v1/documents/victim-doc", victim.Key, "")
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, marker) {
			t.Fatalf("the victim's document: %d %s", resp.StatusCode, body)
		}
		resp = inst.Do(t, "POST", "/v1/search", victim.Key, `{"query":"heron quarry"}`)
		if body := servertest.ReadBody(t, resp); !strings.Contains(body, marker) {
			t.Fatalf("the victim's search no longer finds its document: %s", body)
		}
		var usage struct {
			Plan      string             `json:"plan"`
			Documents struct{ Used int } `json:"documents"`
		}
		if err := json.Unmarshal([]byte(servertest.ReadBody(t, inst.Do(t, "GET", "/v1/usage", victim.Key, ""))), &usage); err != nil ||
			usage.Plan != "pro" || usage.Documents.Used != 1 {
			t.Fatalf("the victim's usage: %+v (%v), want Pro with 1 document", usage, err)
		}
	})
}

// apiBody is a request body for a /v1 POST route that names id where it can.
func apiBody(path, id string) string {
	switch path {
	case "/v1/documents":
		return `{"documents":[{"id":"` + id + `","text":"Overwritten by another workspace."}]}`
	case "/v1/search":
		return `{"query":"heron quarry","filter":{"owner":"victim"}}`
	case "/v1/answer":
		return `{"question":"where does the heron nest?"}`
	}
	return `{"id":"` + id + `"}`
}
