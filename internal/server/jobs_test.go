package server_test

import (
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestEveryJobTimesOutBeforeItIsRescued lists every kind of job a replica works,
// with its timeout, and checks each against the queue's rescue delay: a job left
// running by a crashed replica resumes elsewhere after JOBS_RESCUE_AFTER, and a
// run still going on a live one is never handed to a second. A new kind of job
// must be added here, with a timeout below the rescue delay.
func TestEveryJobTimesOutBeforeItIsRescued(t *testing.T) {
	want := map[string]time.Duration{
		"mail.send":                             time.Minute,
		"retrieval.reembed":                     time.Minute, // 20 s slices of batches bounded to 30 s
		"retrieval.cleanup_vectors":             time.Minute,
		"retrieval.drop_workspace":              time.Minute,
		"billing.cancel_duplicate_subscription": time.Minute,
		"billing.cancel_subscription":           time.Minute,
	}
	inst := servertest.Start(t, nil)
	q := inst.Server.Queue()
	if q.RescueAfter() != 90*time.Second {
		t.Fatalf("rescue delay %s, want the default 90s", q.RescueAfter())
	}
	got := q.Timeouts()
	for kind, timeout := range got {
		w, ok := want[kind]
		if !ok {
			t.Errorf("%s (timeout %s) is not in this table", kind, timeout)
			continue
		}
		if timeout != w {
			t.Errorf("%s: timeout %s, want %s", kind, timeout, w)
		}
		if timeout >= q.RescueAfter() {
			t.Errorf("%s: timeout %s is not below the rescue delay %s", kind, timeout, q.RescueAfter())
		}
	}
	for kind := range want {
		if _, ok := got[kind]; !ok {
			t.Errorf("%s is not registered", kind)
		}
	}
}
