package jobs

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := backoff{base: time.Second, max: 10 * time.Minute}
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, time.Second}, // River counts from 1; 0 is treated as the first
		{1, time.Second},
		{2, 2 * time.Second},
		{5, 16 * time.Second},
		{10, 512 * time.Second},
		{11, 10 * time.Minute}, // 1024 s capped
		{60, 10 * time.Minute},
	} {
		for range 50 {
			got := b.delay(tc.attempt)
			lo, hi := time.Duration(float64(tc.want)*0.9), time.Duration(float64(tc.want)*1.1)
			if got < lo || got > hi {
				t.Fatalf("attempt %d: delay %s, want %s ±10%%", tc.attempt, got, tc.want)
			}
		}
	}
}
