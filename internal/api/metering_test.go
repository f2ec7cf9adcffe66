package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// testRedis is the shared Redis, in a database of its own so these tests' keys
// stay out of everyone else's way (keys are per API key, so tests never collide).
const testRedis = "redis://127.0.0.1:6379/11"

type usageBody struct {
	Plan   string `json:"plan"`
	Period struct {
		Start, End time.Time
	} `json:"period"`
	Requests struct {
		Used  int64  `json:"used"`
		Limit *int64 `json:"limit"`
	} `json:"requests"`
	RateLimit struct {
		Limit         *int64 `json:"limit"`
		WindowSeconds int    `json:"window_seconds"`
	} `json:"rate_limit"`
	Documents struct {
		Used  int64  `json:"used"`
		Limit *int64 `json:"limit"`
	} `json:"documents"`
}

func getUsage(t *testing.T, inst *servertest.Instance, key string) usageBody {
	t.Helper()
	var u usageBody
	call(t, inst, "GET", "/v1/usage", key, "", http.StatusOK, &u)
	return u
}

// outcome is one response, read fully.
type outcome struct {
	status int
	code   string
	header http.Header
}

func do(t *testing.T, inst *servertest.Instance, method, path, key, body string) outcome {
	t.Helper()
	resp := inst.Do(t, method, path, key, body)
	b := servertest.ReadBody(t, resp)
	o := outcome{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode >= 400 {
		var e apiError
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			t.Fatalf("%s %s: %d with a body that is not the error shape: %s", method, path, resp.StatusCode, b)
		}
		o.code = e.Error.Code
	}
	return o
}

func TestMonthlyQuota(t *testing.T) {
	t.Run("ExactAcrossTwoReplicas", func(t *testing.T) {
		env := map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "50", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "unlimited"}
		a := servertest.Start(t, env)
		b := servertest.StartOn(t, a.DatabaseURL, env)
		acct := a.NewAccount(t, plan.Free)
		const before, concurrent = 7, 120
		for i := 0; i < before; i++ {
			call(t, a, "POST", "/v1/search", acct.Key, `{"query":"anything"}`, http.StatusOK, nil)
		}
		var ok, exceeded atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < concurrent; i++ {
			inst := []*servertest.Instance{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := do(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`)
				switch {
				case o.status == http.StatusOK:
					ok.Add(1)
				case o.status == http.StatusTooManyRequests && o.code == "quota_exceeded":
					if ra, err := strconv.Atoi(o.header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("quota_exceeded with Retry-After %q", o.header.Get("Retry-After"))
					}
					exceeded.Add(1)
				default:
					t.Errorf("unexpected answer %d %s", o.status, o.code)
				}
			}()
		}
		wg.Wait()
		if got, want := ok.Load(), int64(50-before); got != want {
			t.Errorf("%d of %d concurrent billable requests succeeded, want %d", got, concurrent, want)
		}
		if got, want := exceeded.Load(), int64(concurrent-(50-before)); got != want {
			t.Errorf("%d got quota_exceeded, want %d", got, want)
		}
		for _, inst := range []*servertest.Instance{a, b} {
			u := getUsage(t, inst, acct.Key)
			if u.Requests.Used != 50 || u.Requests.Limit == nil || *u.Requests.Limit != 50 {
				t.Errorf("/v1/usage requests = %d / %v, want 50 / 50", u.Requests.Used, u.Requests.Limit)
			}
		}
		// Non-billable routes keep working for an exhausted workspace.
		call(t, b, "GET", "/v1/me", acct.Key, "", http.StatusOK, nil)
		call(t, b, "GET", "/v1/documents", acct.Key, "", http.StatusOK, nil)
	})

	t.Run("FailedRequestsAreNotBilled", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "3"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":""}`, http.StatusBadRequest, nil)
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[]}`, http.StatusBadRequest, nil)
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusOK, nil)
		if u := getUsage(t, inst, acct.Key); u.Requests.Used != 1 {
			t.Fatalf("used = %d after two failed and one good billable request, want 1", u.Requests.Used)
		}
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"text":"The tide turns twice a day."}]}`, http.StatusOK, nil)
		call(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"when does the tide turn?"}`, http.StatusOK, nil)
		o := do(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`)
		if o.status != http.StatusTooManyRequests || o.code != "quota_exceeded" {
			t.Fatalf("4th billable request: %d %s, want 429 quota_exceeded", o.status, o.code)
		}
		u := getUsage(t, inst, acct.Key)
		if u.Requests.Used != 3 || u.Documents.Used != 1 || u.Documents.Limit == nil || *u.Documents.Limit != 500 {
			t.Fatalf("usage = %+v, want 3 requests used and 1 of 500 documents", u)
		}
	})

	t.Run("UsageShape", func(t *testing.T) {
		inst := servertest.Start(t, nil)
		acct := inst.NewAccount(t, plan.Pro)
		resp := inst.Do(t, "GET", "/v1/usage", acct.Key, "")
		body := servertest.ReadBody(t, resp)
		var raw map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		req := raw["requests"].(map[string]any)
		if lim, present := req["limit"]; !present || lim != nil {
			t.Fatalf("Pro requests.limit = %v (present %v), want null: %s", lim, present, body)
		}
		u := getUsage(t, inst, acct.Key)
		now := time.Now().UTC()
		if u.Plan != "pro" || u.RateLimit.Limit == nil || *u.RateLimit.Limit != 120 || u.RateLimit.WindowSeconds != 60 ||
			u.Period.Start != time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC) || u.Period.End != u.Period.Start.AddDate(0, 1, 0) {
			t.Fatalf("usage = %s", body)
		}
	})
}

var (
	policyRe = regexp.MustCompile(`^"minute";q=(\d+);w=60$`)
	limitRe  = regexp.MustCompile(`^"minute";r=(\d+);t=(\d+)$`)
)

// eightQuickCalls calls GET /v1/me eight times (spread over instances in turn)
// and returns how many passed; refusals must be rate_limited with Retry-After,
// and every answer must carry the rate-limit headers.
func eightQuickCalls(t *testing.T, key string, insts ...*servertest.Instance) int {
	t.Helper()
	passed := 0
	for i := 0; i < 8; i++ {
		o := do(t, insts[i%len(insts)], "GET", "/v1/me", key, "")
		if m := policyRe.FindStringSubmatch(o.header.Get("RateLimit-Policy")); m == nil || m[1] != "5" {
			t.Errorf("call %d: RateLimit-Policy %q, want \"minute\";q=5;w=60", i+1, o.header.Get("RateLimit-Policy"))
		}
		if !limitRe.MatchString(o.header.Get("RateLimit")) {
			t.Errorf("call %d: RateLimit %q", i+1, o.header.Get("RateLimit"))
		}
		switch {
		case o.status == http.StatusOK:
			passed++
		case o.status == http.StatusTooManyRequests && o.code == "rate_limited":
			if ra, err := strconv.Atoi(o.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("call %d: 429 with Retry-After %q", i+1, o.header.Get("Retry-After"))
			}
		default:
			t.Errorf("call %d: %d %s", i+1, o.status, o.code)
		}
	}
	return passed
}

func TestRateLimit(t *testing.T) {
	five := map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "5"}

	t.Run("InProcess", func(t *testing.T) {
		inst := servertest.Start(t, five)
		acct := inst.NewAccount(t, plan.Free)
		o := do(t, inst, "GET", "/v1/me", acct.Key, "")
		if got := o.header.Get("RateLimit"); !strings.HasPrefix(got, `"minute";r=4;t=`) {
			t.Fatalf("first call: RateLimit %q, want 4 remaining", got)
		}
		if got := eightQuickCalls(t, acct.Key, inst); got != 4 {
			t.Fatalf("%d of the next 8 calls passed, want 4 (5 per minute, one already spent)", got)
		}
		// Another key of another workspace has its own budget.
		other := inst.NewAccount(t, plan.Free)
		call(t, inst, "GET", "/v1/me", other.Key, "", http.StatusOK, nil)
	})

	t.Run("RedisSharesTheBudgetAcrossReplicas", func(t *testing.T) {
		env := map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "5", "REDIS_URL": testRedis}
		a := servertest.Start(t, env)
		b := servertest.StartOn(t, a.DatabaseURL, env)
		acct := a.NewAccount(t, plan.Free)
		if got := eightQuickCalls(t, acct.Key, a, b); got != 5 {
			t.Fatalf("%d of 8 calls over two replicas passed, want 5", got)
		}
	})

	t.Run("RedisStoppedTheServiceKeepsAnswering", func(t *testing.T) {
		own := redistest.Start(t)
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "5", "REDIS_URL": own.URL, "ADMIN_TOKEN": "ops-token-123"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "GET", "/v1/me", acct.Key, "", http.StatusOK, nil)
		own.Stop()
		// Limits now come from this replica's memory, which starts a fresh budget.
		if got := eightQuickCalls(t, acct.Key, inst); got != 5 {
			t.Fatalf("%d of 8 calls passed with Redis down, want 5", got)
		}
		metrics := inst.Metrics(t)
		m := regexp.MustCompile(`(?m)^cairn_ratelimit_redis_fallbacks_total (\d+)`).FindStringSubmatch(metrics)
		if m == nil || m[1] == "0" {
			t.Fatalf("cairn_ratelimit_redis_fallbacks_total not counting: %v", m)
		}
		if !strings.Contains(inst.Logs(), "Redis unavailable") {
			t.Fatal("the outage was not logged")
		}
		req, _ := http.NewRequest("GET", inst.URL+"/health/detailed", nil)
		req.Header.Set("Authorization", "Bearer ops-token-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := servertest.ReadBody(t, resp); !strings.Contains(body, `"rate_limits":"in process (Redis unavailable)"`) {
			t.Fatalf("/health/detailed = %s", body)
		}
	})

	t.Run("UnauthenticatedPerIP", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_IP_PER_DAY": "3"})
		for i, key := range []string{"", "ck_live_nonsense", "ck_live_00000000000000000000000000000000000000"} {
			o := do(t, inst, "GET", "/v1/me", key, "")
			if o.status != http.StatusUnauthorized || o.header.Get("RateLimit-Policy") != `"day";q=3;w=86400` {
				t.Fatalf("call %d: %d, policy %q; want 401 under the per-IP day policy", i+1, o.status, o.header.Get("RateLimit-Policy"))
			}
		}
		o := do(t, inst, "GET", "/v1/me", "", "")
		if o.status != http.StatusTooManyRequests || o.code != "rate_limited" || o.header.Get("Retry-After") == "" {
			t.Fatalf("4th call without a key: %d %s, want 429 rate_limited with Retry-After", o.status, o.code)
		}
		// A valid key from the same address is not held back by the IP's budget.
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "GET", "/v1/me", acct.Key, "", http.StatusOK, nil)
	})
}

// TestShutdownLosesNoUsageEvent stops a replica gracefully (as SIGTERM does) while
// clients hammer it, restarts it on the same database and checks that every
// request that got an answer is in the usage tables.
func TestShutdownLosesNoUsageEvent(t *testing.T) {
	a := servertest.Start(t, nil)
	acct := a.NewAccount(t, plan.Enterprise)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var served, billable atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", a.URL+"/v1/me", nil)
				if i%4 == 0 {
					req, _ = http.NewRequest("POST", a.URL+"/v1/search", strings.NewReader(`{"query":"tides"}`))
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Authorization", "Bearer "+acct.Key)
				resp, err := client.Do(req)
				if err != nil {
					return // the replica is gone
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				served.Add(1)
				if req.Method == "POST" && resp.StatusCode == http.StatusOK {
					billable.Add(1)
				}
			}
		}()
	}
	for served.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	a.Stop()
	close(stop)
	wg.Wait()
	t.Logf("%d requests served before and during shutdown", served.Load())

	b := servertest.StartOn(t, a.DatabaseURL, nil)
	var events, daily, dailyBillable int64
	err := b.Server.Pool().QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM usage_events WHERE workspace_id = $1),
		       (SELECT coalesce(sum(requests), 0) FROM usage_daily WHERE workspace_id = $1),
		       (SELECT coalesce(sum(billable), 0) FROM usage_daily WHERE workspace_id = $1)`, acct.WorkspaceID).Scan(&events, &daily, &dailyBillable)
	if err != nil {
		t.Fatal(err)
	}
	if events != served.Load() || daily != served.Load() {
		t.Fatalf("after restart: %d events and %d in the roll-up, want %d (requests served)", events, daily, served.Load())
	}
	if dailyBillable != billable.Load() {
		t.Fatalf("roll-up says %d billable, clients saw %d successful searches", dailyBillable, billable.Load())
	}
	if u := getUsage(t, b, acct.Key); u.Requests.Used != billable.Load() {
		t.Fatalf("/v1/usage after restart says %d, want %d", u.Requests.Used, billable.Load())
	}
}

func TestUsageEventsRecordEveryRequest(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "3"})
	acct := inst.NewAccount(t, plan.Free)
	for i := 0; i < 4; i++ { // the 4th is rate limited
		inst.Do(t, "GET", "/v1/me", acct.Key, "").Body.Close()
	}
	inst.Do(t, "GET", "/v1/me", "", "").Body.Close()
	want := map[string]int{"GET /v1/me 200": 3, "GET /v1/me 429": 1}
	var got map[string]int
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got = map[string]int{}
		rows, err := inst.Server.Pool().Query(t.Context(), "SELECT endpoint, status, count(*) FROM usage_events WHERE workspace_id = $1 GROUP BY 1, 2", acct.WorkspaceID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var ep string
			var status, n int
			_ = rows.Scan(&ep, &status, &n)
			got[fmt.Sprintf("%s %d", ep, status)] = n
		}
		rows.Close()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage events %v, want %v", got, want)
	}
	var anon int
	if err := inst.Server.Pool().QueryRow(t.Context(), "SELECT count(*) FROM usage_events WHERE workspace_id IS NULL AND status = 401").Scan(&anon); err != nil || anon != 1 {
		t.Fatalf("unauthenticated events = %d, %v; want 1", anon, err)
	}
}

// TestOpenAPICountsAgainstTheRateLimit checks that GET /v1/openapi.json, which needs
// no key, is still rate-limited and reports it: under the key's per-minute budget
// when one is sent, under the caller's daily per-IP budget when none is.
func TestOpenAPICountsAgainstTheRateLimit(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "5", "CAIRN_PLAN_FREE_IP_PER_DAY": "3"})
	acct := inst.NewAccount(t, plan.Free)

	t.Run("WithAKeyTheKeysBudget", func(t *testing.T) {
		o := do(t, inst, "GET", "/v1/openapi.json", acct.Key, "")
		if o.status != http.StatusOK || o.header.Get("RateLimit-Policy") != `"minute";q=5;w=60` ||
			!strings.HasPrefix(o.header.Get("RateLimit"), `"minute";r=4;t=`) {
			t.Fatalf("%d, RateLimit-Policy %q, RateLimit %q; want 200 with the key's fields, one spent",
				o.status, o.header.Get("RateLimit-Policy"), o.header.Get("RateLimit"))
		}
	})
	t.Run("WithoutAKeyTheIPsDailyBudget", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			o := do(t, inst, "GET", "/v1/openapi.json", "", "")
			if o.status != http.StatusOK || o.header.Get("RateLimit-Policy") != `"day";q=3;w=86400` {
				t.Fatalf("call %d: %d, RateLimit-Policy %q; want 200 under the per-IP day policy", i+1, o.status, o.header.Get("RateLimit-Policy"))
			}
		}
		if o := do(t, inst, "GET", "/v1/openapi.json", "", ""); o.status != http.StatusTooManyRequests || o.code != "rate_limited" {
			t.Fatalf("4th call without a key: %d %s, want 429 rate_limited", o.status, o.code)
		}
	})
}
