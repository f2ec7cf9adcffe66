package device_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/device"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

func TestNormalizeUserCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"BCDF-GHJK", "BCDF-GHJK", true},
		{"bcdfghjk", "BCDF-GHJK", true},
		{" bcdf ghjk ", "BCDF-GHJK", true},
		{"BC-DF-GH-JK", "BCDF-GHJK", true},
		{"BCDF-GHJ", "", false},     // too short
		{"BCDF-GHJKL", "", false},   // too long
		{"BCDF-GHJA", "", false},    // a vowel is never in a code
		{"BCDF-GHJ1", "", false},    // nor a digit
		{"BCDF\x00GHJK", "", false}, // nor anything else
		{"ＢCDF-GHJK", "", false},    // a full-width letter is not a code letter
		{"", "", false},
	} {
		got, ok := device.NormalizeUserCode(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestConcurrentPollsIssueOneKey: two polls racing after the approval get one key
// between them; the other is refused.
func TestConcurrentPollsIssueOneKey(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	users := auth.NewService(pool)
	u, ws, err := users.SignUp(ctx, "racer@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if err := users.MarkVerified(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	keys := apikey.NewService(pool, plan.Default(), slog.New(slog.DiscardHandler))
	devices := device.NewService(pool, keys, workspace.NewService(pool, plan.Default()))
	a, err := devices.Start(ctx, "racer", apikey.Client{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := devices.Decide(ctx, u.ID, a.UserCode, ws.ID, true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = devices.Poll(ctx, a.DeviceCode, apikey.Client{})
		}()
	}
	wg.Wait()
	issued := 0
	for _, err := range results {
		var ge *device.GrantError
		switch {
		case err == nil:
			issued++
		case errors.As(err, &ge) && (ge.Code == device.InvalidGrant || ge.Code == device.SlowDown):
		default:
			t.Fatalf("poll: %v", err)
		}
	}
	list, err := keys.List(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	if issued != 1 || len(list) != 1 {
		t.Fatalf("%d polls got a key and the workspace has %d keys; want exactly one", issued, len(list))
	}
}
