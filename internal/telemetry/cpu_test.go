package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/telemetry"
)

func TestCPUUsageWindow(t *testing.T) {
	c := telemetry.NewCPU()
	time.Sleep(200 * time.Millisecond)
	if u := c.Usage(); u.WindowSeconds < 0.1 {
		t.Fatalf("before the first tick: %+v, want the window since the start", u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, 100*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Busy work, so that the window has CPU time in it.
		x := 0
		for i := range 5_000_000 {
			x += i
		}
		_ = x
		u := c.Usage()
		if u.WindowSeconds > 0 && u.WindowSeconds < 1 && u.Cores > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after ticks: %+v, want a window of about 0.1 s with CPU in it", u)
		}
	}
	cancel()
	<-done
}
