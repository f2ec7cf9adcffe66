package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestReembeddingResumesAfterKill9 runs replicas as processes on one database:
// replica A starts the re-embedding a workspace's own endpoint needs and is killed
// with SIGKILL halfway, leaving its job running in the queue with no one to run
// it. Replica B, started after, must take the job over once JOBS_RESCUE_AFTER has
// passed and finish it (progress completes, the pending embedder becomes the
// active one), while every search, through A until the kill and through B after,
// answers with the old vectors' results or the new ones', never nothing and never
// a mix. (TestReembeddingSurvivesAKilledReplica stops the replica gracefully
// instead, which hands its job back at once.)
func TestReembeddingResumesAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about a minute and a half for the queue's rescue")
	}
	const endpointKey = "sk-workspace-endpoint-key-k9"
	fake := openaitest.Start(t, endpointKey)
	fake.Delay = time.Second // five batches: seconds to kill A in the middle of
	encKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	e := env(map[string]string{
		"ENCRYPTION_KEY": encKey, "CUSTOM_EMBEDDER_ALLOW_PRIVATE": "true",
		// The shortest rescue delay allowed: just over the longest job timeout.
		"JOBS_RESCUE_AFTER": "61s",
	})
	bin := servertest.Binary(t)
	dbURL := dbtest.New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	a := servertest.StartProcess(t, bin, dbURL, e)
	acct := servertest.NewAccountIn(t, pool, plan.Default(), plan.Pro)
	ingestNotes(t, a.URL, acct.Key)
	before, err := searchIDs(a.URL, acct.Key)
	if err != nil || len(before) == 0 {
		t.Fatalf("search before the switch: %v, %v", before, err)
	}

	watch := watchSearches(acct.Key, a.URL)
	br := a.NewBrowser(t)
	br.LogIn(acct.Email, servertest.Password)
	chooseEndpoint(t, br, fake.BaseURL(), endpointKey)

	// Halfway: some batches stored, not all; A is then in the middle of a request.
	progress := func() (done, total int64) { return embedderProgress(t, pool, acct.WorkspaceID) }
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		done, total := progress()
		if done > 0 && done < total {
			break
		}
		if time.Now().After(deadline) || done < 0 {
			t.Fatalf("never halfway: done %d of %d", done, total)
		}
	}
	watch.setLive("")
	a.Kill()
	killed := time.Now()
	halfway, total := progress()
	var state string
	if err := pool.QueryRow(context.Background(), `SELECT state FROM river_job WHERE kind = 'retrieval.reembed' AND args->>'workspace_id' = $1`, acct.WorkspaceID.String()).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if halfway <= 0 || halfway >= total || state != "running" {
		t.Fatalf("after killing A: %d of %d done, job %s; want it halfway and left running", halfway, total, state)
	}

	b := servertest.StartProcess(t, bin, dbURL, e)
	watch.setLive(b.URL)
	var resumed time.Time
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		done, _ := progress()
		if resumed.IsZero() && (done < 0 || done > halfway) {
			resumed = time.Now()
		}
		if done < 0 {
			break // the pending row became the active one
		}
		if time.Now().After(deadline) {
			t.Fatalf("B did not finish the job: %d of %d done\n%s", done, total, b.Logs())
		}
	}
	switched := time.Now()
	after, err := searchIDs(b.URL, acct.Key)
	if err != nil || len(after) == 0 {
		t.Fatalf("search after the switch: %v, %v", after, err)
	}
	watch.check(t, before, after)

	if !strings.Contains(b.Logs(), `"retrieval: workspace switched embedder"`) {
		t.Fatal("B did not make the switch")
	}
	// The job is marked completed just after its last run returns.
	servertest.Eventually(t, func() bool {
		var rescued bool
		if err := pool.QueryRow(context.Background(), `SELECT state = 'completed' AND errors::text LIKE '%Stuck job rescued%' FROM river_job WHERE kind = 'retrieval.reembed' AND args->>'workspace_id' = $1`, acct.WorkspaceID.String()).Scan(&rescued); err != nil {
			t.Fatal(err)
		}
		return rescued
	}, "the job was not completed after River's rescuer took it from A")
	var active string
	if err := pool.QueryRow(context.Background(), `SELECT vector_model FROM workspace_embedders WHERE workspace_id = $1 AND slot = 'active'`, acct.WorkspaceID).Scan(&active); err != nil || !strings.HasPrefix(active, "custom/text-embedding-3-small@64#") {
		t.Fatalf("active embedder after: %q %v", active, err)
	}
	t.Logf("killed A at %d of %d chunks; B resumed the job %s after the kill and switched %s after it",
		halfway, total, resumed.Sub(killed).Round(time.Second), switched.Sub(killed).Round(time.Second))
}
