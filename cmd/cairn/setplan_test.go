package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestSetPlanReachesEveryReplica runs `cairn admin set-plan` against the database
// of two running replicas and watches both lift and then lower the workspace's
// rate limit and monthly quota.
func TestSetPlanReachesEveryReplica(t *testing.T) {
	env := map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "3", "CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "4"}
	a := servertest.Start(t, env)
	b := servertest.StartOn(t, a.DatabaseURL, env)
	replicas := []*servertest.Instance{a, b}
	acct := a.NewAccount(t, plan.Free)
	status := func(inst *servertest.Instance, method, path, body string) (int, string) {
		resp := inst.Do(t, method, path, acct.Key, body)
		b := servertest.ReadBody(t, resp)
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal([]byte(b), &e)
		return resp.StatusCode, e.Error.Code
	}
	search := func(inst *servertest.Instance) (int, string) {
		return status(inst, "POST", "/v1/search", `{"query":"tides"}`)
	}
	// waitFor polls until cond holds on every replica; NOTIFY makes it take
	// milliseconds, the deadline only stops a broken build from hanging.
	waitFor := func(what string, cond func(*servertest.Instance) bool) {
		t.Helper()
		for _, inst := range replicas {
			deadline := time.Now().Add(10 * time.Second)
			for !cond(inst) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: not on replica %s", what, inst.URL)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	setPlan := func(p string) {
		t.Helper()
		vars := map[string]string{"DATABASE_URL": a.DatabaseURL}
		for k, v := range env {
			vars[k] = v
		}
		if out, err := runWith(t, vars, "admin", "set-plan", "--workspace", acct.Email, "--plan", p); err != nil {
			t.Fatalf("set-plan %s: %v %s", p, err, out)
		}
	}

	// Free: the quota of 4 runs out, both replicas refuse, and each replica's key
	// budget of 3 a minute is spent too.
	for i := 0; i < 4; i++ {
		if s, code := search(replicas[i%2]); s != http.StatusOK {
			t.Fatalf("search %d on Free: %d %s", i+1, s, code)
		}
	}
	for _, inst := range replicas {
		if s, code := search(inst); s != http.StatusTooManyRequests {
			t.Fatalf("search past the quota: %d %s, want 429", s, code)
		}
	}

	t.Run("LiftedByUpgrade", func(t *testing.T) {
		setPlan("pro")
		waitFor("searches accepted on Pro", func(inst *servertest.Instance) bool {
			s, _ := search(inst)
			return s == http.StatusOK
		})
		// Pro allows 120 a minute: ten more calls on each replica all pass.
		for _, inst := range replicas {
			for i := 0; i < 10; i++ {
				if s, code := status(inst, "GET", "/v1/me", ""); s != http.StatusOK {
					t.Fatalf("call %d on Pro: %d %s", i+1, s, code)
				}
			}
		}
	})

	t.Run("LoweredByDowngrade", func(t *testing.T) {
		setPlan("free")
		waitFor("the quota enforced again on Free", func(inst *servertest.Instance) bool {
			_, code := search(inst)
			return code == "quota_exceeded"
		})
		waitFor("Free's rate limit back", func(inst *servertest.Instance) bool {
			s, code := status(inst, "GET", "/v1/me", "")
			return s == http.StatusTooManyRequests && code == "rate_limited"
		})
	})
}
