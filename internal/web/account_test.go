package web_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// readZip returns every file of a zip by name.
func readZip(t *testing.T, body []byte) map[string][]byte {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		files[f.Name] = b
	}
	return files
}

// ndjson decodes each line of b.
func ndjson(t *testing.T, name string, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q: %v", name, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestExportHoldsEverythingAndNoSecret downloads "my data" for a person who owns
// one workspace and is a member of another, and checks the zip file by file: every
// document with its text and metadata, key metadata without a secret or a hash,
// usage by day and the audit log, each as much as their role shows them.
func TestExportHoldsEverythingAndNoSecret(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := context.Background()
	pool := inst.Server.Pool()
	me := inst.NewAccount(t, plan.Enterprise)
	second := inst.NewKey(t, me, apikey.Spec{Name: "second", Scopes: apikey.DocumentsRead | apikey.Search})
	team := inst.NewAccount(t, plan.Enterprise)
	myTeamKey := inst.Join(t, me, team.WorkspaceID, "member")
	secrets := []string{me.Key, second, team.Key, myTeamKey}

	const n = 130
	texts := map[string]string{}
	var batch []string
	for i := range n {
		id := fmt.Sprintf("note-%03d", i)
		texts[id] = fmt.Sprintf("Note %d: the moraine at site %d is %d metres high. \"quoted\" <b>not html</b>", i, i*3, 10+i)
		b, _ := json.Marshal(map[string]any{"id": id, "title": "Moraine " + id, "text": texts[id], "metadata": map[string]any{"site": i}})
		batch = append(batch, string(b))
		if len(batch) == 100 || i == n-1 {
			call(t, inst, "POST", "/v1/documents", me.Key, `{"documents":[`+strings.Join(batch, ",")+`]}`, http.StatusOK)
			batch = nil
		}
	}
	call(t, inst, "POST", "/v1/documents", team.Key, `{"documents":[{"id":"team-doc","text":"The team's shared note."}]}`, http.StatusOK)
	call(t, inst, "POST", "/v1/search", me.Key, `{"query":"moraine"}`, http.StatusOK)
	servertest.Eventually(t, func() bool {
		var rows int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM usage_daily WHERE workspace_id = $1`, me.WorkspaceID).Scan(&rows)
		return rows >= 2
	}, "usage to be rolled up")

	b := inst.NewBrowser(t)
	b.LogIn(me.Email, servertest.Password)
	if _, page := b.Get("/dashboard/settings"); !strings.Contains(page, `href="/dashboard/settings/export"`) {
		t.Fatal("Settings has no link to download my data")
	}
	resp, err := b.Client.Get(inst.URL + "/dashboard/settings/export")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(servertest.ReadBody(t, resp))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("export: %d %v", resp.StatusCode, resp.Header)
	}
	files := readZip(t, body)

	var hash string
	if err := pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, me.UserID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	forbidden := []string{hash, `"hash"`, `"password`}
	for _, s := range secrets {
		sum := sha256.Sum256([]byte(s))
		forbidden = append(forbidden, s, s[len("ck_live_"):], hex.EncodeToString(sum[:]))
	}
	for name, content := range files {
		for _, f := range forbidden {
			if bytes.Contains(content, []byte(f)) {
				t.Errorf("%s holds a secret or a hash (%.20s…)", name, f)
			}
		}
	}

	var acct struct{ ID, Email string }
	if err := json.Unmarshal(files["account.json"], &acct); err != nil || acct.Email != me.Email || acct.ID != me.UserID.String() {
		t.Fatalf("account.json %s (%v)", files["account.json"], err)
	}
	var wss []struct{ ID, Role string }
	if err := json.Unmarshal(files["workspaces.json"], &wss); err != nil || len(wss) != 2 {
		t.Fatalf("workspaces.json %s (%v)", files["workspaces.json"], err)
	}
	own, shared := "workspaces/"+me.WorkspaceID.String()+"/", "workspaces/"+team.WorkspaceID.String()+"/"

	docs := ndjson(t, own+"documents.ndjson", files[own+"documents.ndjson"])
	if len(docs) != n {
		t.Fatalf("%d documents exported, want %d", len(docs), n)
	}
	for _, d := range docs {
		id, _ := d["id"].(string)
		if d["text"] != texts[id] || d["title"] != "Moraine "+id || d["metadata"].(map[string]any)["site"] == nil ||
			d["status"] != "indexed" || d["created_at"] == nil {
			t.Fatalf("document %v: want its text, title, metadata, status and dates", d)
		}
		delete(texts, id)
	}
	if len(texts) != 0 {
		t.Fatalf("documents missing from the export: %d", len(texts))
	}
	if got := ndjson(t, shared+"documents.ndjson", files[shared+"documents.ndjson"]); len(got) != 1 || got[0]["text"] != "The team's shared note." {
		t.Fatalf("the member's workspace's documents: %v", got)
	}

	var keys []map[string]any
	if err := json.Unmarshal(files[own+"api_keys.json"], &keys); err != nil || len(keys) != 2 {
		t.Fatalf("own api_keys.json %s (%v), want both keys", files[own+"api_keys.json"], err)
	}
	for _, k := range keys {
		if p, _ := k["prefix"].(string); !strings.HasPrefix(me.Key, p) && !strings.HasPrefix(second, p) {
			t.Errorf("key %v is not one of mine", k)
		}
	}
	keys = nil
	if err := json.Unmarshal(files[shared+"api_keys.json"], &keys); err != nil || len(keys) != 1 || !strings.HasPrefix(myTeamKey, keys[0]["prefix"].(string)) {
		t.Fatalf("a member's api_keys.json %s (%v): want only the key they made", files[shared+"api_keys.json"], err)
	}

	usage := ndjson(t, own+"usage_daily.ndjson", files[own+"usage_daily.ndjson"])
	var searches float64
	for _, u := range usage {
		if u["endpoint"] == "POST /v1/search" {
			searches += u["requests"].(float64)
		}
	}
	if searches != 1 {
		t.Fatalf("usage_daily %v: want the one search", usage)
	}

	ownAudit := ndjson(t, own+"audit_log.ndjson", files[own+"audit_log.ndjson"])
	var created int
	for _, a := range ownAudit {
		if a["action"] == "api_key.created" {
			created++
		}
	}
	if created != 2 {
		t.Fatalf("own audit log %v: want both keys' creation", ownAudit)
	}
	var teamRows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE workspace_id = $1`, team.WorkspaceID).Scan(&teamRows); err != nil {
		t.Fatal(err)
	}
	teamAudit := ndjson(t, shared+"audit_log.ndjson", files[shared+"audit_log.ndjson"])
	if teamRows == 0 || len(teamAudit) >= teamRows {
		t.Fatalf("a member got %d of the team's %d audit rows; want only their own", len(teamAudit), teamRows)
	}
	for _, a := range teamAudit {
		if a["actor_user_id"] != me.UserID.String() {
			t.Errorf("a member's export holds another's audit row %v", a)
		}
	}
	if _, ok := files["audit_log.ndjson"]; !ok {
		t.Error("no account-level audit_log.ndjson")
	}
}
