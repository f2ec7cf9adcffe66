package server_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/stripetest"
)

// detailedHealth is the part of /health/detailed the tests read.
type detailedHealth struct {
	Status      string `json:"status"`
	MemoryUsage struct {
		HeapAlloc int64 `json:"heap_alloc_bytes"`
		RSS       int64 `json:"rss_bytes"`
	} `json:"memory_usage"`
	CPUUsage *struct {
		Cores         float64 `json:"cores"`
		WindowSeconds float64 `json:"window_seconds"`
	} `json:"cpu_usage"`
	ActiveConnections *int `json:"active_connections"`
	Dependencies      map[string]struct {
		Status    string   `json:"status"`
		LatencyMS *float64 `json:"latency_ms"`
		Error     string   `json:"error"`
		LastError *struct {
			Error string    `json:"error"`
			At    time.Time `json:"at"`
		} `json:"last_error"`
	} `json:"dependencies"`
}

func getDetailed(t *testing.T, inst *servertest.Instance, token string) (int, http.Header, detailedHealth) {
	t.Helper()
	req, _ := http.NewRequest("GET", inst.URL+"/health/detailed", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := servertest.ReadBody(t, resp)
	var h detailedHealth
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/health/detailed: %d %s: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, resp.Header, h
}

func TestDetailedHealthFollowsDependencies(t *testing.T) {
	proxy := dbtest.NewProxy(t, dbtest.New(t))
	rdb := redistest.Start(t)
	inst := servertest.StartOn(t, proxy.URL(), map[string]string{"ADMIN_TOKEN": "ops-token", "REDIS_URL": rdb.URL})

	code, _, h := getDetailed(t, inst, "ops-token")
	if code != 200 || h.Status != "healthy" {
		t.Fatalf("all up: %d %q, want 200 healthy", code, h.Status)
	}
	for _, name := range []string{"postgres", "redis"} {
		if d := h.Dependencies[name]; d.Status != "ok" || d.LatencyMS == nil || d.Error != "" {
			t.Errorf("%s: %+v, want ok with a latency", name, d)
		}
	}
	for _, name := range []string{"pinecone", "openai", "smtp", "stripe"} {
		if d := h.Dependencies[name]; d.Status != "not_configured" || d.LatencyMS != nil {
			t.Errorf("%s: %+v, want not_configured", name, d)
		}
	}
	if h.MemoryUsage.HeapAlloc <= 0 || h.MemoryUsage.RSS <= 0 || h.CPUUsage == nil || h.CPUUsage.WindowSeconds <= 0 {
		t.Errorf("memory %+v cpu %+v: want figures", h.MemoryUsage, *h.CPUUsage)
	}
	if h.ActiveConnections == nil || *h.ActiveConnections < 1 {
		t.Errorf("active_connections = %v, want at least this request's", h.ActiveConnections)
	}

	t.Run("RedisDownIsDegraded", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Pro)
		rdb.Stop()
		// Real traffic meets the outage first: its failure is kept as Redis's last error.
		if resp := inst.Do(t, "GET", "/v1/me", acct.Key, ""); resp.StatusCode != 200 {
			t.Fatalf("GET /v1/me with Redis down: %d, want 200 (in-process limits)", resp.StatusCode)
		}
		code, _, h := getDetailed(t, inst, "ops-token")
		if code != 200 || h.Status != "degraded" {
			t.Fatalf("Redis down: %d %q, want 200 degraded", code, h.Status)
		}
		r := h.Dependencies["redis"]
		if r.Status != "down" || r.Error == "" || r.LastError == nil || r.LastError.Error == "" || time.Since(r.LastError.At) > time.Minute {
			t.Errorf("redis: %+v, want down with the probe's error and a recent last error", r)
		}
		if p := h.Dependencies["postgres"]; p.Status != "ok" {
			t.Errorf("postgres: %+v, want ok", p)
		}
	})

	t.Run("PostgresDownIsUnhealthy", func(t *testing.T) {
		proxy.Cut()
		defer proxy.Restore()
		code, header, h := getDetailed(t, inst, "ops-token")
		if code != 503 || h.Status != "unhealthy" || header.Get("Retry-After") == "" {
			t.Fatalf("PostgreSQL down: %d %q Retry-After %q, want 503 unhealthy with Retry-After", code, h.Status, header.Get("Retry-After"))
		}
		p := h.Dependencies["postgres"]
		if p.Status != "down" || p.Error == "" || p.LastError == nil || p.LastError.At.IsZero() {
			t.Errorf("postgres: %+v, want down with an error and its time", p)
		}
	})
}

func TestDetailedHealthProbesEveryConfiguredDependency(t *testing.T) {
	smtp := mailtest.Start(t)
	stripe := stripetest.Start(t)
	inst := servertest.Start(t, map[string]string{
		"ADMIN_TOKEN": "ops-token", "SMTP_URL": smtp.SMTPURL(),
		"STRIPE_SECRET_KEY": "sk_test_123", "STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_PRICE_PRO": "price_pro",
		"STRIPE_PRICE_ENTERPRISE": "price_ent", "STRIPE_API_BASE": stripe,
	})
	code, _, h := getDetailed(t, inst, "ops-token")
	if code != 200 || h.Status != "healthy" {
		t.Fatalf("%d %q, want 200 healthy", code, h.Status)
	}
	for _, name := range []string{"smtp", "stripe"} {
		if d := h.Dependencies[name]; d.Status != "ok" || d.LatencyMS == nil {
			t.Errorf("%s: %+v, want ok with a latency", name, d)
		}
	}
	// The Stripe probe is a real call: it is counted with the others.
	if got := inst.Scrape(t).Value("cairn_dependency_calls_total", map[string]string{"dependency": "stripe", "outcome": "ok"}); got < 1 {
		t.Errorf("Stripe calls counted: %v, want the probe's", got)
	}

	// Mail sent for real traffic (a sign-up's verification) is a call to SMTP too.
	inst.NewBrowser(t).SignUp("health-mail@example.com", "correct horse battery staple 42")
	smtp.WaitFor("health-mail@example.com", "", 30*time.Second)
	sent := 0.0
	for deadline := time.Now().Add(10 * time.Second); sent < 1 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		sent = inst.Scrape(t).Value("cairn_dependency_calls_total", map[string]string{"dependency": "smtp", "operation": "send", "outcome": "ok"})
	}
	if sent < 1 {
		t.Errorf("emails sent over SMTP counted: %v, want the verification's", sent)
	}

	smtp.Stop()
	code, _, h = getDetailed(t, inst, "ops-token")
	if code != 200 || h.Status != "degraded" || h.Dependencies["smtp"].Status != "down" {
		t.Fatalf("SMTP down: %d %q smtp %+v, want 200 degraded with smtp down", code, h.Status, h.Dependencies["smtp"])
	}
}
