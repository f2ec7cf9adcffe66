package retrieval

import (
	"testing"

	"github.com/cairn-dev/cairn/internal/jobs"
)

// TestReembedRunEndsWithinItsTimeout checks the arithmetic a crash relies on: a
// run starts batches only within its slice and each batch is bounded, so it ends
// before its timeout, and the timeout is below the queue's default rescue delay.
func TestReembedRunEndsWithinItsTimeout(t *testing.T) {
	if longest := reembedSlice + reembedStepTimeout; longest >= reembedTimeout {
		t.Fatalf("a run may last %s (slice %s + one step %s), not within its timeout %s", longest, reembedSlice, reembedStepTimeout, reembedTimeout)
	}
	if reembedTimeout >= jobs.DefaultRescueAfter {
		t.Fatalf("timeout %s is not below the default rescue delay %s", reembedTimeout, jobs.DefaultRescueAfter)
	}
}
