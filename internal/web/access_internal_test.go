package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/workspace"
)

// TestEveryDashboardRouteHasAnAccessRule walks the router's own routes: a route
// added without a row in routeAccess fails here (and is refused at run time), and
// so does a row left behind for a route that no longer exists.
func TestEveryDashboardRouteHasAnAccessRule(t *testing.T) {
	e := echo.New()
	(&Handler{}).Routes(e)
	valid := append([]string{anyone, signedIn}, workspace.Roles...)
	seen := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound || strings.HasPrefix(r.Path, "/webhooks/") {
			continue // Stripe signs its webhooks; they carry no session.
		}
		key := r.Method + " " + r.Path
		seen[key] = true
		rule, ok := routeAccess[key]
		if !ok {
			t.Errorf("%s has no rule in routeAccess", key)
			continue
		}
		if !slices.Contains(valid, rule) {
			t.Errorf("%s: rule %q is not one of %v", key, rule, valid)
		}
	}
	if len(seen) < 10 {
		t.Fatalf("walked only %d routes; is the router empty?", len(seen))
	}
	for key := range routeAccess {
		if !seen[key] {
			t.Errorf("routeAccess has a rule for %s, which is not a route", key)
		}
	}
}
