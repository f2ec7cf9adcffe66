package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
)

func load(env map[string]string) (Config, error) {
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return Load(func(k string) string { return env[k] }, environ)
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(nil)
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	if c.DatabaseURL != DefaultDatabaseURL || c.ListenAddr != ":8080" || c.BaseURL != "http://localhost:8080" {
		t.Fatalf("defaults = %+v", c)
	}
	if c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("MetricsAddr = %q, want 127.0.0.1:9090", c.MetricsAddr)
	}
	if off, err := load(map[string]string{"METRICS_ADDR": "off"}); err != nil || off.MetricsAddr != "" {
		t.Fatalf("METRICS_ADDR=off: %q %v, want none", off.MetricsAddr, err)
	}
	if c.ShutdownDrain != 5*time.Second {
		t.Fatalf("ShutdownDrain = %s, want 5s", c.ShutdownDrain)
	}
	if c.JobsRescueAfter != 90*time.Second {
		t.Fatalf("JobsRescueAfter = %s, want 90s", c.JobsRescueAfter)
	}
	if c2, err := load(map[string]string{"JOBS_RESCUE_AFTER": "65s"}); err != nil || c2.JobsRescueAfter != 65*time.Second {
		t.Fatalf("JOBS_RESCUE_AFTER=65s: %s %v", c2.JobsRescueAfter, err)
	}
	if c.SecureCookies() || c.Stripe.Enabled() || c.Pinecone.Enabled() || c.RedisURL != "" || c.AdminToken != "" {
		t.Fatalf("optional features on by default: %+v", c)
	}
	if got := c.Plans.Get(plan.Free).Limits; got != plan.Default().Get(plan.Free).Limits {
		t.Fatalf("Free limits = %+v, want the plan table's", got)
	}
}

func TestShutdownDrainForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"0", 0}, {"7", 7 * time.Second}, {"1500ms", 1500 * time.Millisecond}, {"1m", time.Minute}} {
		c, err := load(map[string]string{"SHUTDOWN_DRAIN": tc.in})
		if err != nil || c.ShutdownDrain != tc.want {
			t.Errorf("SHUTDOWN_DRAIN=%s: %s %v, want %s", tc.in, c.ShutdownDrain, err, tc.want)
		}
	}
}

func TestLoadValues(t *testing.T) {
	c, err := load(map[string]string{
		"BASE_URL":          "https://cairn.example.com/",
		"CORS_ORIGINS":      "https://a.example.com, https://b.example.com/",
		"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x",
		"STRIPE_PRICE_PRO": "price_pro", "STRIPE_PRICE_ENTERPRISE": "price_ent",
		"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "1000",
		"CAIRN_PLAN_PRO_API_KEYS":            "unlimited",
		"CAIRN_PLAN_FREE_RATE_PER_MINUTE":    "60",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://cairn.example.com" || !c.SecureCookies() {
		t.Fatalf("BASE_URL = %q, secure cookies %v", c.BaseURL, c.SecureCookies())
	}
	if got := strings.Join(c.CORSOrigins, " "); got != "https://a.example.com https://b.example.com" {
		t.Fatalf("CORS origins = %q", got)
	}
	if !c.Stripe.Enabled() {
		t.Fatalf("Stripe not enabled")
	}
	free, pro := c.Plans.Get(plan.Free).Limits, c.Plans.Get(plan.Pro).Limits
	if free.RequestsPerMonth != 1000 || free.RatePerMinute != 60 || pro.APIKeys != plan.Unlimited {
		t.Fatalf("overrides not applied: free %+v, pro %+v", free, pro)
	}
	if plan.Default().Get(plan.Free).Limits.RequestsPerMonth != 100 {
		t.Fatalf("overriding changed the default table")
	}
}

func TestLoadFileVariants(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "admin")
	if err := os.WriteFile(secret, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "db")
	if err := os.WriteFile(dbFile, []byte("postgres://app:pw@db:5432/cairn"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(map[string]string{"ADMIN_TOKEN_FILE": secret, "DATABASE_URL_FILE": dbFile})
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "s3cret-token" || c.DatabaseURL != "postgres://app:pw@db:5432/cairn" {
		t.Fatalf("_FILE values not read (trimmed): %q %q", c.AdminToken, c.DatabaseURL)
	}
	t.Run("NotASecret", func(t *testing.T) {
		// Only secrets have _FILE variants; others are ignored rather than read.
		c, err := load(map[string]string{"LISTEN_ADDR_FILE": secret})
		if err != nil || c.ListenAddr != ":8080" {
			t.Fatalf("LISTEN_ADDR_FILE: %q, %v", c.ListenAddr, err)
		}
	})
}

// TestLoadProblems checks that each bad setting produces one line naming its
// variable, and that all problems are reported at once.
func TestLoadProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // one entry per expected line, each a substring of it
	}{
		{"DatabaseURLScheme", map[string]string{"DATABASE_URL": "mysql://x/y"}, []string{"DATABASE_URL"}},
		{"DatabaseDirectURLScheme", map[string]string{"DATABASE_DIRECT_URL": "pgbouncer:6432"}, []string{"DATABASE_DIRECT_URL"}},
		{"ShutdownDrainNotADuration", map[string]string{"SHUTDOWN_DRAIN": "soon"}, []string{"SHUTDOWN_DRAIN"}},
		{"ShutdownDrainNegative", map[string]string{"SHUTDOWN_DRAIN": "-1s"}, []string{"SHUTDOWN_DRAIN"}},
		{"BaseURLNotHTTP", map[string]string{"BASE_URL": "localhost:8080"}, []string{"BASE_URL"}},
		{"ListenAddrNoPort", map[string]string{"LISTEN_ADDR": "8080"}, []string{"LISTEN_ADDR"}},
		{"MetricsAddrNoPort", map[string]string{"METRICS_ADDR": "9090"}, []string{"METRICS_ADDR"}},
		{"OTLPEndpointNotHTTP", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{"OTLPOverGRPC", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, []string{"OTEL_EXPORTER_OTLP_PROTOCOL"}},
		{"OTLPHeadersMalformed", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key"}, []string{"OTEL_EXPORTER_OTLP_HEADERS"}},
		{"RedisURL", map[string]string{"REDIS_URL": "http://redis"}, []string{"REDIS_URL"}},
		{"SMTPURL", map[string]string{"SMTP_URL": "mail.example.com"}, []string{"SMTP_URL"}},
		{"OpenAIBaseURL", map[string]string{"OPENAI_BASE_URL": "ftp://x"}, []string{"OPENAI_BASE_URL"}},
		{"PineconeHalf", map[string]string{"PINECONE_API_KEY": "pk"}, []string{"PINECONE_API_KEY and PINECONE_INDEX_HOST"}},
		{"StripeIncomplete", map[string]string{"STRIPE_SECRET_KEY": "sk"}, []string{"STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_PRO", "STRIPE_PRICE_ENTERPRISE"}},
		{"CORSOriginWithPath", map[string]string{"CORS_ORIGINS": "https://a.example.com/app"}, []string{"CORS_ORIGINS"}},
		{"PlanUnknownLimit", map[string]string{"CAIRN_PLAN_FREE_SPEED": "3"}, []string{"CAIRN_PLAN_FREE_SPEED"}},
		{"PlanUnknownPlan", map[string]string{"CAIRN_PLAN_GOLD_API_KEYS": "3"}, []string{"CAIRN_PLAN_GOLD_API_KEYS"}},
		{"PlanNotANumber", map[string]string{"CAIRN_PLAN_FREE_API_KEYS": "lots"}, []string{"CAIRN_PLAN_FREE_API_KEYS"}},
		{"PlanNegative", map[string]string{"CAIRN_PLAN_FREE_DOCUMENTS": "-5"}, []string{"CAIRN_PLAN_FREE_DOCUMENTS"}},
		{"PlanZeroRate", map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "0"}, []string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE"}},
		{"SecretAndFileBoth", map[string]string{"ADMIN_TOKEN": "a", "ADMIN_TOKEN_FILE": "/dev/null"}, []string{"ADMIN_TOKEN and ADMIN_TOKEN_FILE"}},
		{"SecretFileMissing", map[string]string{"STRIPE_SECRET_KEY_FILE": "/nonexistent/cairn-secret"}, []string{"STRIPE_SECRET_KEY_FILE"}},
		{"EncryptionKeyShort", map[string]string{"ENCRYPTION_KEY": "c2hvcnQ="}, []string{"ENCRYPTION_KEY: decodes to 5 bytes"}},
		{"EncryptionKeyNotAKey", map[string]string{"ENCRYPTION_KEY": "correct horse battery staple"}, []string{"ENCRYPTION_KEY"}},
		{"EncryptionKeyPreviousAlone", map[string]string{"ENCRYPTION_KEY_PREVIOUS": strings.Repeat("ab", 32)}, []string{"ENCRYPTION_KEY_PREVIOUS is set without ENCRYPTION_KEY"}},
		{"JobsRescueAtTheJobTimeout", map[string]string{"JOBS_RESCUE_AFTER": "60s"}, []string{"JOBS_RESCUE_AFTER"}},
		{"JobsRescueNotADuration", map[string]string{"JOBS_RESCUE_AFTER": "soon"}, []string{"JOBS_RESCUE_AFTER"}},
		{"CustomEmbedderAllowPrivateNotABool", map[string]string{"CUSTOM_EMBEDDER_ALLOW_PRIVATE": "yes"}, []string{"CUSTOM_EMBEDDER_ALLOW_PRIVATE"}},
		{"Several", map[string]string{"BASE_URL": "nope", "LISTEN_ADDR": "8080", "REDIS_URL": "x"}, []string{"BASE_URL", "LISTEN_ADDR", "REDIS_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.env)
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want %d problems", tc.env, len(tc.want))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("Load(%v) reported %d lines, want %d:\n%s", tc.env, len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) && !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to name %s", i+1, lines[i], w)
				}
			}
		})
	}
}

func TestSecretsNotInProblems(t *testing.T) {
	_, err := load(map[string]string{"DATABASE_URL": "mysql://user:hunter2hunter2@db/x", "REDIS_URL": "http://:hunter3hunter3@r"})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hunter3") {
		t.Fatalf("configuration error leaks a password: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	if got, want := RedactURL("postgres://app:pw@db:5432/cairn?sslmode=disable"), "postgres://app:xxxxx@db:5432/cairn?sslmode=disable"; got != want {
		t.Fatalf("RedactURL = %q, want %q", got, want)
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := load(nil)
	if err != nil || len(c.TrustedProxies) != 0 {
		t.Fatalf("by default %v (%v), want nobody trusted", c.TrustedProxies, err)
	}
	c, err = load(map[string]string{"TRUSTED_PROXIES": " 10.0.0.7/8, 127.0.0.1 ,fd00::/8,::1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 127.0.0.1/32 fd00::/8 ::1/128"; strings.Join(got, " ") != want {
		t.Fatalf("TrustedProxies = %v, want %s", got, want)
	}
	_, err = load(map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8,nginx"})
	if err == nil || !strings.Contains(err.Error(), `TRUSTED_PROXIES: "nginx"`) {
		t.Fatalf("error = %v, want one naming the bad entry", err)
	}
}

func TestVariables(t *testing.T) {
	vars := Variables()
	for _, want := range []string{"DATABASE_URL", "DATABASE_URL_FILE", "MIGRATE", "SCHEMA_WAIT", "VECTOR_CACHE_MB", "REDIS_URL_FILE", "SHUTDOWN_DRAIN"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Variables() lacks %s: %v", want, vars)
		}
	}
	// Only secrets have a _FILE form.
	if slices.Contains(vars, "LISTEN_ADDR_FILE") {
		t.Errorf("Variables() lists LISTEN_ADDR_FILE, which Load ignores")
	}
}

// Every secret can be given as a file, so Kubernetes can mount them all.
func TestEverySecretFromFile(t *testing.T) {
	dir := t.TempDir()
	for name := range secrets {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte("not-a-valid-value\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		asked := false
		_, _ = Load(func(k string) string {
			if k == name+"_FILE" {
				asked = true
				return file
			}
			return ""
		}, nil)
		if !asked {
			t.Errorf("%s_FILE is never read", name)
		}
	}
}

func TestMigrateAndSchemaWait(t *testing.T) {
	c, err := load(nil)
	if err != nil || !c.Migrate || c.SchemaWait != 5*time.Minute {
		t.Fatalf("defaults: Migrate=%v SchemaWait=%s %v, want true 5m", c.Migrate, c.SchemaWait, err)
	}
	c, err = load(map[string]string{"MIGRATE": "false", "SCHEMA_WAIT": "30s"})
	if err != nil || c.Migrate || c.SchemaWait != 30*time.Second {
		t.Fatalf("MIGRATE=false SCHEMA_WAIT=30s: Migrate=%v SchemaWait=%s %v", c.Migrate, c.SchemaWait, err)
	}
	if _, err := load(map[string]string{"MIGRATE": "no"}); err == nil || !strings.Contains(err.Error(), "MIGRATE") {
		t.Fatalf("MIGRATE=no: %v, want a problem naming MIGRATE", err)
	}
}

func TestTracingVariables(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Tracing
	}{
		{"Off", nil, Tracing{ServiceName: "cairn"}},
		{"Endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.honeycomb.io/", "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=abc%3D,x-b=2", "OTEL_SERVICE_NAME": "cairn-eu"},
			Tracing{Endpoint: "https://api.honeycomb.io/v1/traces", Headers: map[string]string{"x-honeycomb-team": "abc=", "x-b": "2"}, ServiceName: "cairn-eu"}},
		{"TracesEndpointAsItIs", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"},
			Tracing{Endpoint: "http://b:4318/custom", ServiceName: "cairn"}},
		{"SDKDisabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"}, Tracing{ServiceName: "cairn"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Tracing, tc.want) {
				t.Fatalf("Tracing = %+v, want %+v", c.Tracing, tc.want)
			}
		})
	}
}
