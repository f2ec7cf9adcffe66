package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestDashboardBodiesAreBounded checks that the dashboard refuses bodies far larger
// than its forms produce before parsing them.
func TestDashboardBodiesAreBounded(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, "correct horse battery")

	t.Run("OversizedFormBodyIs413AndChangesNothing", func(t *testing.T) {
		form := url.Values{"name": {"padded"}, "pad": {strings.Repeat("a", 100<<10)}}
		resp, body := b.Submit("/dashboard/keys", "/dashboard/keys", form)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %.300s", resp.StatusCode, body)
		}
		if _, page := b.Get("/dashboard/keys"); strings.Contains(page, "padded") {
			t.Fatal("the oversized form created a key")
		}
	})
}
