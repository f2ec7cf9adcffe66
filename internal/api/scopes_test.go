package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/api"
	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// validBodies are requests each keyed route accepts, so a key with the right
// scope gets a success and not some other refusal.
var validBodies = map[string]string{
	"POST /v1/documents": `{"documents":[{"id":"scoped","text":"Scopes decide which calls a key may make."}]}`,
	"POST /v1/search":    `{"query":"scopes"}`,
	"POST /v1/answer":    `{"question":"what do scopes decide?"}`,
}

// TestEveryRouteUnderEveryScope walks the router's own /v1 routes: every route that
// wants a key has a scope rule, a key holding only that scope (or any key, for a
// route that needs none) succeeds, and a key holding any other single scope gets
// 403 insufficient_scope naming the scope the route needs.
func TestEveryRouteUnderEveryScope(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)
	single := map[string]string{}
	for _, name := range apikey.ScopeNames() {
		s, err := apikey.ParseScopes([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		single[name] = inst.NewKey(t, acct, apikey.Spec{Name: "only " + name, Scopes: s})
	}
	walked := 0
	for _, r := range inst.Server.Handler().(*echo.Echo).Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") || r.Method == http.MethodOptions || r.Method == echo.RouteNotFound {
			continue
		}
		route := r.Method + " " + r.Path
		path := strings.ReplaceAll(r.Path, ":id", "d1")
		// A route that refuses a request without a key is a keyed route.
		resp := inst.Do(t, r.Method, path, "", validBodies[route])
		servertest.ReadBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized {
			continue
		}
		walked++
		need, ok := api.RouteScope(r.Method, r.Path)
		if !ok {
			t.Errorf("%s takes a key but has no scope rule in routeScopes", route)
			continue
		}
		for name, key := range single {
			t.Run(route+"/"+name, func(t *testing.T) {
				// Every call finds the document it may read or delete.
				call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"d1","text":"Stored for the scope walk."}]}`, 200, nil)
				resp := inst.Do(t, r.Method, path, key, validBodies[route])
				body := servertest.ReadBody(t, resp)
				allowed := need == 0 || need.String() == name
				if allowed {
					if resp.StatusCode >= 300 {
						t.Fatalf("a key with %s: %d %s; want success", name, resp.StatusCode, body)
					}
					return
				}
				var e apiError
				_ = json.Unmarshal([]byte(body), &e)
				if resp.StatusCode != http.StatusForbidden || e.Error.Code != "insufficient_scope" || !strings.Contains(e.Error.Message, `"`+need.String()+`"`) {
					t.Fatalf("a key with only %s: %d %s; want 403 insufficient_scope naming %q", name, resp.StatusCode, body, need.String())
				}
			})
		}
	}
	if walked < 8 {
		t.Fatalf("walked %d keyed routes; the router has more", walked)
	}
}

// TestRolledKeyOnTwoReplicas: after a roll, the old secret keeps working on every
// replica for its grace, and every replica refuses it once the grace is over (each
// had it cached), while the new secret works throughout.
func TestRolledKeyOnTwoReplicas(t *testing.T) {
	first := servertest.Start(t, env(nil))
	second := servertest.StartOn(t, first.DatabaseURL, env(nil))
	acct := first.NewAccount(t, plan.Pro)
	replicas := []*servertest.Instance{first, second}
	for _, inst := range replicas {
		if status, _ := me(t, inst, acct.Key); status != 200 {
			t.Fatalf("before the roll: %d on %s", status, inst.URL)
		}
	}
	_, m := me(t, first, acct.Key)
	keys := apikey.NewService(first.Server.Pool(), first.Config.Plans, slog.New(slog.DiscardHandler))
	const grace = 3 * time.Second
	ws := workspace.Workspace{ID: acct.WorkspaceID, Role: workspace.RoleOwner}
	rolled, err := keys.Roll(context.Background(), ws, mustUUID(t, m.Key.ID), acct.UserID, grace)
	if err != nil {
		t.Fatal(err)
	}
	graceEnds := time.Now().Add(grace)
	for _, inst := range replicas {
		for name, key := range map[string]string{"old": acct.Key, "new": rolled.Secret} {
			if status, got := me(t, inst, key); status != 200 || got.Key.ID != m.Key.ID {
				t.Fatalf("%s secret during the grace on %s: %d", name, inst.URL, status)
			}
		}
	}
	if time.Now().After(graceEnds) {
		t.Fatal("the grace ended before the checks ran; the machine is too slow for this test")
	}
	time.Sleep(time.Until(graceEnds) + 100*time.Millisecond)
	for _, inst := range replicas {
		if status, _ := me(t, inst, acct.Key); status != 401 {
			t.Fatalf("old secret after the grace on %s: %d, want 401", inst.URL, status)
		}
		if status, _ := me(t, inst, rolled.Secret); status != 200 {
			t.Fatalf("new secret after the grace on %s: %d", inst.URL, status)
		}
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
