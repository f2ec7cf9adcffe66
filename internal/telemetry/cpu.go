package telemetry

import (
	"context"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// CPU measures the process's CPU use over a recent window: Run samples the
// process's CPU time every interval, and Usage compares the latest two samples.
type CPU struct {
	mu         sync.Mutex
	prev, last cpuSample
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

// NewCPU returns a CPU whose first window starts now.
func NewCPU() *CPU {
	s := sampleCPU()
	return &CPU{prev: s, last: s}
}

// Run samples every interval until ctx ends.
func (c *CPU) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := sampleCPU()
		c.mu.Lock()
		c.prev, c.last = c.last, s
		c.mu.Unlock()
	}
}

// CPUUsage is the process's CPU use over a window.
type CPUUsage struct {
	// Cores is CPU time per wall-clock time: 1.5 means one and a half cores busy.
	Cores float64 `json:"cores"`
	// Percent is Cores as a share of every core the process may use (GOMAXPROCS).
	Percent       float64 `json:"percent"`
	WindowSeconds float64 `json:"window_seconds"`
}

// Usage returns the use over the last complete window, or since the first sample
// when no window has completed yet.
func (c *CPU) Usage() CPUUsage {
	c.mu.Lock()
	from, to := c.prev, c.last
	c.mu.Unlock()
	if !to.at.After(from.at) {
		to = sampleCPU()
	}
	wall := to.at.Sub(from.at)
	if wall <= 0 {
		return CPUUsage{}
	}
	cores := float64(to.cpu-from.cpu) / float64(wall)
	return CPUUsage{
		Cores:         round(cores, 3),
		Percent:       round(100*cores/float64(runtime.GOMAXPROCS(0)), 1),
		WindowSeconds: round(wall.Seconds(), 3),
	}
}

func sampleCPU() cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpuSample{at: time.Now(), cpu: cpu}
}

func round(f float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}
