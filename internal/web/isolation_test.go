package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestDashboardCannotTouchOtherWorkspacesKeys signs in as one workspace and tries
// to revoke another's key by id: 404, and the key keeps working.
func TestDashboardCannotTouchOtherWorkspacesKeys(t *testing.T) {
	inst := servertest.Start(t, nil)
	victim := inst.NewAccount(t, plan.Pro)
	resp := inst.Do(t, http.MethodGet, "/v1/me", victim.Key, "")
	var me struct{ Key struct{ ID string } }
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &me); err != nil || me.Key.ID == "" {
		t.Fatalf("GET /v1/me: %v", err)
	}

	b := inst.NewBrowser(t)
	b.SignUp("mallory@example.com", "correct horse battery")
	if _, body := b.Get("/dashboard/keys"); strings.Contains(body, me.Key.ID) || strings.Contains(body, victim.Key[:12]) {
		t.Fatalf("another workspace's key is listed")
	}
	for _, id := range []string{me.Key.ID, "not-a-uuid", "00000000-0000-0000-0000-000000000000"} {
		resp, body := b.Submit("/dashboard/keys", "/dashboard/keys/"+id+"/revoke", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("revoking %s from another workspace: %d, want 404: %s", id, resp.StatusCode, body)
		}
	}
	resp = inst.Do(t, http.MethodGet, "/v1/me", victim.Key, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim's key stopped working: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
