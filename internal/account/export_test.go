package account_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestExportPagesTheAuditLog: an audit log several pages of the export's reads
// long comes out whole, each entry once, both a workspace's and the account's own.
func TestExportPagesTheAuditLog(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := context.Background()
	pool := inst.Server.Pool()
	me := inst.NewAccount(t, plan.Enterprise)
	const n = 2500 // two full pages and a short one
	for _, ws := range []any{me.WorkspaceID, nil} {
		if _, err := pool.Exec(ctx, `INSERT INTO audit_log (workspace_id, actor_kind, actor_user_id, action, target_kind, target_id)
			SELECT $1, 'user', $2, 'test.paged', 'thing', 'p' || g FROM generate_series(1, $3::int) g`, ws, me.UserID, n); err != nil {
			t.Fatal(err)
		}
	}
	b := inst.NewBrowser(t)
	b.LogIn(me.Email, servertest.Password)
	resp, err := b.Client.Get(inst.URL + "/dashboard/settings/export")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(servertest.ReadBody(t, resp))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"workspaces/" + me.WorkspaceID.String() + "/audit_log.ndjson", "audit_log.ndjson"} {
		f, err := z.Open(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seen := map[string]int{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e struct {
				Action   string `json:"action"`
				TargetID string `json:"target_id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if e.Action == "test.paged" {
				seen[e.TargetID]++
			}
		}
		if err := sc.Err(); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		for i := 1; i <= n; i++ {
			if c := seen[fmt.Sprintf("p%d", i)]; c != 1 {
				t.Fatalf("%s: entry p%d appears %d times, want once (%d distinct of %d)", name, i, c, len(seen), n)
			}
		}
	}
}
