package openai

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"Absent", http.Header{}, 0},
		{"Seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"FractionalSeconds", http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond},
		{"HTTPDate", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"PastDate", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{"Garbage", http.Header{"Retry-After": {"soon"}}, 0},
		{"MillisecondsWin", http.Header{"Retry-After": {"7"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.header, now); got != tc.want {
				t.Fatalf("retryAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: never split
		{"日本語", 4, "日"},
		{"日本語", 6, "日本"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestBatches(t *testing.T) {
	t.Run("OneTextLargerThanTheByteLimitStandsAlone", func(t *testing.T) {
		big := strings.Repeat("a", 50)
		got := batches([]string{"x", big, "y"}, 10, 20)
		if len(got) != 3 || got[1][0] != big {
			t.Fatalf("batches = %q", got)
		}
	})
	t.Run("NoTextsNoBatches", func(t *testing.T) {
		if got := batches(nil, 10, 20); len(got) != 0 {
			t.Fatalf("batches = %q", got)
		}
	})
}

// TestPublicOnly: a workspace's endpoint may only be dialled at a public address;
// this machine, private and shared networks, link-local (cloud metadata) and
// IPv4-mapped forms of them are refused.
func TestPublicOnly(t *testing.T) {
	for addr, refuse := range map[string]bool{
		"8.8.8.8:443":                false,
		"[2001:4860:4860::8888]:443": false,
		"127.0.0.1:443":              true,
		"[::1]:443":                  true,
		"10.1.2.3:443":               true,
		"192.168.0.10:443":           true,
		"172.16.5.5:443":             true,
		"100.64.0.1:443":             true,
		"169.254.169.254:80":         true,
		"[fe80::1]:443":              true,
		"[fd00::1]:443":              true,
		"0.0.0.0:443":                true,
		"[::ffff:127.0.0.1]:443":     true,
	} {
		err := publicOnly("tcp", addr, nil)
		if refused := err != nil; refused != refuse {
			t.Errorf("publicOnly(%s) = %v; want refused: %v", addr, err, refuse)
		}
	}
}
