// Package config reads Cairn's configuration from the environment and validates it.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/secretbox"
)

// Config is everything Cairn reads from its environment.
type Config struct {
	DatabaseURL string
	// DatabaseDirectURL reaches PostgreSQL without a transaction pooler, for LISTEN
	// and the migration lock; empty means DatabaseURL is direct already.
	DatabaseDirectURL string
	ListenAddr        string
	// MetricsAddr is where /metrics is served, apart from the public listener;
	// empty when METRICS_ADDR is "off".
	MetricsAddr string
	BaseURL     string
	AdminToken  string
	RedisURL    string
	CORSOrigins []string
	SMTPURL     string
	// TrustedProxies are the addresses whose X-Forwarded-For is believed (the load
	// balancers in front of Cairn); empty means the peer address is the client.
	TrustedProxies []netip.Prefix

	// ShutdownDrain is how long a replica told to stop keeps serving, with /readyz
	// answering 503 and every connection closed after its response, before it stops
	// accepting and drains in-flight requests: time for load balancers to move away.
	ShutdownDrain time.Duration

	// Migrate (MIGRATE, default true) has serve and the admin commands apply pending
	// migrations at start-up. false: they leave that to `cairn migrate` (a Kubernetes
	// Job) and wait up to SchemaWait (SCHEMA_WAIT, default 5m) for the schema this
	// build needs to be there.
	Migrate    bool
	SchemaWait time.Duration

	// JobsRescueAfter (JOBS_RESCUE_AFTER, default 90s) is how long a job may stay
	// running before another replica takes it over from one that crashed. It must
	// exceed the longest job timeout (a minute); the job queue refuses to start
	// otherwise.
	JobsRescueAfter time.Duration

	// QueryCacheTTL (QUERY_CACHE_TTL, default 24h) is how long a query's embedding
	// stays in Redis for every replica to reuse, when REDIS_URL is set.
	QueryCacheTTL time.Duration

	// EncryptionKey seals workspaces' own embedding endpoint keys (ENCRYPTION_KEY, 32
	// bytes as base64 or hex); EncryptionKeyPrevious (ENCRYPTION_KEY_PREVIOUS) still
	// opens what the key before it sealed, during a rotation. nil: unset.
	EncryptionKey, EncryptionKeyPrevious []byte

	OpenAI    OpenAI
	Pinecone  Pinecone
	Retrieval Retrieval
	Stripe    Stripe
	Tracing   Tracing

	Plans plan.Table
}

// OpenAI configures the embedder and the answerer; an empty APIKey means local
// embeddings and extractive answers unless a caller brings a key.
type OpenAI struct {
	APIKey         string
	BaseURL        string
	EmbeddingModel string
	ChatModel      string

	// EmbeddingDimensions asks the model for shorter vectors (text-embedding-3-* can
	// shorten them, e.g. to fit a Pinecone index's dimension); 0 keeps the model's own.
	EmbeddingDimensions int
}

// Pinecone configures the Pinecone vector index; empty means the built-in index.
type Pinecone struct {
	APIKey    string
	IndexHost string
}

// Retrieval tunes the built-in embedder and vector index.
type Retrieval struct {
	LocalEmbeddingDim int   // LOCAL_EMBEDDING_DIM: the local embedder's dimension
	VectorCacheBytes  int64 // VECTOR_CACHE_MB: the builtin index's memory budget
	// CustomEmbedderAllowPrivate (CUSTOM_EMBEDDER_ALLOW_PRIVATE=true) lets workspaces'
	// own embedding endpoints be on loopback or private addresses.
	CustomEmbedderAllowPrivate bool
}

// Tracing configures OpenTelemetry traces, sent over OTLP/HTTP (protobuf); an
// empty Endpoint turns tracing off. The standard OTEL_* variables set it.
type Tracing struct {
	// Endpoint is where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is,
	// or OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces added.
	Endpoint string
	// Headers go with every export (OTEL_EXPORTER_OTLP_HEADERS, "k=v,k2=v2"): often
	// the vendor's API key, so a secret.
	Headers     map[string]string
	ServiceName string
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.Endpoint != "" }

// Stripe configures billing; an empty SecretKey turns billing off.
type Stripe struct {
	SecretKey       string
	WebhookSecret   string
	PricePro        string
	PriceEnterprise string
	APIBase         string
}

// Enabled reports whether billing is configured.
func (s Stripe) Enabled() bool { return s.SecretKey != "" }

// Enabled reports whether Pinecone is configured.
func (p Pinecone) Enabled() bool { return p.APIKey != "" && p.IndexHost != "" }

// DirectDatabaseURL returns the URL for session-bound work (LISTEN/NOTIFY, the
// migration lock): DATABASE_DIRECT_URL, or DATABASE_URL when that is unset.
func (c Config) DirectDatabaseURL() string {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL
	}
	return c.DatabaseURL
}

// SecureCookies reports whether cookies must carry the Secure attribute.
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// DefaultDatabaseURL is used when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/cairn?sslmode=disable"

// secrets may also be read from <NAME>_FILE.
var secrets = map[string]bool{
	"DATABASE_URL": true, "DATABASE_DIRECT_URL": true, "ADMIN_TOKEN": true, "REDIS_URL": true, "SMTP_URL": true,
	"OPENAI_API_KEY": true, "PINECONE_API_KEY": true, "ENCRYPTION_KEY": true, "ENCRYPTION_KEY_PREVIOUS": true,
	"STRIPE_SECRET_KEY": true, "STRIPE_WEBHOOK_SECRET": true, "OTEL_EXPORTER_OTLP_HEADERS": true,
}

// Load reads the configuration through getenv and validates it. environ lists
// "NAME=value" pairs for the CAIRN_PLAN_* overrides (os.Environ in production).
// The error, if any, holds one line per problem.
func Load(getenv func(string) string, environ []string) (Config, error) {
	var problems []error
	get := func(name, def string) string {
		v := getenv(name)
		file := ""
		if secrets[name] {
			file = getenv(name + "_FILE")
		}
		if file != "" {
			if v != "" {
				problems = append(problems, fmt.Errorf("%s and %s_FILE are both set; set one", name, name))
			}
			b, err := os.ReadFile(file)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s_FILE: cannot read %s: %v", name, file, errors.Unwrap(err)))
				return def
			}
			v = strings.TrimSpace(string(b))
		}
		if v == "" {
			return def
		}
		return v
	}
	c := Config{
		DatabaseURL:       get("DATABASE_URL", DefaultDatabaseURL),
		DatabaseDirectURL: get("DATABASE_DIRECT_URL", ""),
		ListenAddr:        get("LISTEN_ADDR", ":8080"),
		MetricsAddr:       get("METRICS_ADDR", "127.0.0.1:9090"),
		BaseURL:           strings.TrimRight(get("BASE_URL", "http://localhost:8080"), "/"),
		AdminToken:        get("ADMIN_TOKEN", ""),
		RedisURL:          get("REDIS_URL", ""),
		SMTPURL:           get("SMTP_URL", ""),
		OpenAI: OpenAI{
			APIKey:         get("OPENAI_API_KEY", ""),
			BaseURL:        get("OPENAI_BASE_URL", ""),
			EmbeddingModel: get("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small"),
			ChatModel:      get("OPENAI_CHAT_MODEL", "gpt-4o-mini"),
		},
		Pinecone: Pinecone{
			APIKey:    get("PINECONE_API_KEY", ""),
			IndexHost: get("PINECONE_INDEX_HOST", ""),
		},
		Stripe: Stripe{
			SecretKey:       get("STRIPE_SECRET_KEY", ""),
			WebhookSecret:   get("STRIPE_WEBHOOK_SECRET", ""),
			PricePro:        get("STRIPE_PRICE_PRO", ""),
			PriceEnterprise: get("STRIPE_PRICE_ENTERPRISE", ""),
			APIBase:         get("STRIPE_API_BASE", ""),
		},
	}
	c.Tracing = tracing(get, &problems)
	if c.MetricsAddr == "off" {
		c.MetricsAddr = ""
	}
	c.ShutdownDrain = duration(get("SHUTDOWN_DRAIN", "5s"), "SHUTDOWN_DRAIN", 0, 5*time.Minute, &problems)
	c.SchemaWait = duration(get("SCHEMA_WAIT", "5m"), "SCHEMA_WAIT", time.Second, 24*time.Hour, &problems)
	c.JobsRescueAfter = duration(get("JOBS_RESCUE_AFTER", "90s"), "JOBS_RESCUE_AFTER", time.Minute+time.Second, 24*time.Hour, &problems)
	c.QueryCacheTTL = duration(get("QUERY_CACHE_TTL", "24h"), "QUERY_CACHE_TTL", time.Minute, 30*24*time.Hour, &problems)
	switch v := get("MIGRATE", "true"); v {
	case "true", "false":
		c.Migrate = v == "true"
	default:
		problems = append(problems, fmt.Errorf("MIGRATE: %q is not true or false", v))
	}
	c.Retrieval.LocalEmbeddingDim = positiveInt(get("LOCAL_EMBEDDING_DIM", "3072"), "LOCAL_EMBEDDING_DIM", 16, 4096, &problems)
	c.Retrieval.VectorCacheBytes = int64(positiveInt(get("VECTOR_CACHE_MB", "1024"), "VECTOR_CACHE_MB", 1, 1<<20, &problems)) << 20
	if d := get("OPENAI_EMBEDDING_DIMENSIONS", ""); d != "" {
		c.OpenAI.EmbeddingDimensions = positiveInt(d, "OPENAI_EMBEDDING_DIMENSIONS", 1, 8192, &problems)
	}
	switch v := get("CUSTOM_EMBEDDER_ALLOW_PRIVATE", "false"); v {
	case "true", "false":
		c.Retrieval.CustomEmbedderAllowPrivate = v == "true"
	default:
		problems = append(problems, fmt.Errorf("CUSTOM_EMBEDDER_ALLOW_PRIVATE: %q is not true or false", v))
	}
	for name, dst := range map[string]*[]byte{"ENCRYPTION_KEY": &c.EncryptionKey, "ENCRYPTION_KEY_PREVIOUS": &c.EncryptionKeyPrevious} {
		if v := get(name, ""); v != "" {
			k, err := secretbox.ParseKey(v)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", name, err))
			}
			*dst = k
		}
	}
	if c.EncryptionKeyPrevious != nil && c.EncryptionKey == nil {
		problems = append(problems, errors.New("ENCRYPTION_KEY_PREVIOUS is set without ENCRYPTION_KEY: set ENCRYPTION_KEY to the new key"))
	}
	for _, o := range strings.Split(get("CORS_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, strings.TrimRight(o, "/"))
		}
	}
	for _, p := range strings.Split(get("TRUSTED_PROXIES", ""), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				problems = append(problems, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8 or an address", p))
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	plans, errs := plan.Default().Override(environ)
	c.Plans = plans
	problems = append(problems, errs...)
	problems = append(problems, c.validate()...)
	return c, errors.Join(problems...)
}

// positiveInt parses a whole number in [lo, hi], recording a problem otherwise.
func positiveInt(v, name string, lo, hi int, problems *[]error) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		*problems = append(*problems, fmt.Errorf("%s: %q is not a whole number from %d to %d", name, v, lo, hi))
		return lo
	}
	return n
}

// duration parses a Go duration ("5s", "1m30s"; a bare number is seconds) in
// [lo, hi], recording a problem otherwise.
func duration(v, name string, lo, hi time.Duration, problems *[]error) time.Duration {
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d < lo || d > hi {
		*problems = append(*problems, fmt.Errorf("%s: %q is not a duration from %s to %s, such as 5s", name, v, lo, hi))
		return lo
	}
	return d
}

func (c Config) validate() []error {
	var p []error
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p = append(p, errors.New("DATABASE_URL: want a postgres:// URL"))
	}
	if c.DatabaseDirectURL != "" {
		if u, err := url.Parse(c.DatabaseDirectURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p = append(p, errors.New("DATABASE_DIRECT_URL: want a postgres:// URL"))
		}
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p = append(p, fmt.Errorf("BASE_URL: %q is not an http(s) URL", c.BaseURL))
	}
	if c.MetricsAddr != "" && !strings.Contains(c.MetricsAddr, ":") {
		p = append(p, fmt.Errorf("METRICS_ADDR: %q is not host:port (or off)", c.MetricsAddr))
	}
	if !strings.Contains(c.ListenAddr, ":") {
		p = append(p, fmt.Errorf("LISTEN_ADDR: %q is not host:port", c.ListenAddr))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			p = append(p, errors.New("REDIS_URL: want a redis:// or rediss:// URL"))
		}
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			p = append(p, errors.New("SMTP_URL: want smtp://user:pass@host:port or smtps://…"))
		}
	}
	if c.OpenAI.BaseURL != "" {
		if u, err := url.Parse(c.OpenAI.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			p = append(p, errors.New("OPENAI_BASE_URL: want an http(s) URL"))
		}
	}
	if (c.Pinecone.APIKey == "") != (c.Pinecone.IndexHost == "") {
		p = append(p, errors.New("PINECONE_API_KEY and PINECONE_INDEX_HOST: set both or neither"))
	}
	if c.Stripe.SecretKey != "" {
		for _, v := range [][2]string{
			{"STRIPE_WEBHOOK_SECRET", c.Stripe.WebhookSecret},
			{"STRIPE_PRICE_PRO", c.Stripe.PricePro},
			{"STRIPE_PRICE_ENTERPRISE", c.Stripe.PriceEnterprise},
		} {
			if v[1] == "" {
				p = append(p, fmt.Errorf("%s: required when STRIPE_SECRET_KEY is set", v[0]))
			}
		}
	}
	for _, o := range c.CORSOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
			p = append(p, fmt.Errorf("CORS_ORIGINS: %q is not an origin like https://example.com", o))
		}
	}
	return p
}

// RedactURL returns u with any password replaced by "xxxxx", for messages and logs.
func RedactURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	return parsed.Redacted()
}

// Variables lists every environment variable Load reads, <NAME>_FILE for each
// secret included, sorted; the CAIRN_PLAN_* overrides are matched by prefix (see
// plan.Table.Override) and are not listed. Deployment files are checked against it.
func Variables() []string {
	seen := map[string]bool{}
	_, _ = Load(func(name string) string { seen[name] = true; return "" }, nil)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// tracing reads the standard OpenTelemetry exporter variables Cairn supports. All
// are read whatever their values, so Variables lists them.
func tracing(get func(name, def string) string, problems *[]error) Tracing {
	t := Tracing{ServiceName: get("OTEL_SERVICE_NAME", "cairn")}
	disabled := get("OTEL_SDK_DISABLED", "false") == "true"
	traces, base := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""), get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	protocols := map[string]string{}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		protocols[v] = get(v, "http/protobuf")
	}
	headers := get("OTEL_EXPORTER_OTLP_HEADERS", "")
	name := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	switch {
	case disabled:
		return t
	case traces != "":
		t.Endpoint = traces
	case base != "":
		name = "OTEL_EXPORTER_OTLP_ENDPOINT"
		t.Endpoint = strings.TrimRight(base, "/") + "/v1/traces"
	default:
		return t
	}
	if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		*problems = append(*problems, fmt.Errorf("%s: want an http(s) URL", name))
	}
	for v, p := range protocols {
		if p != "http/protobuf" {
			*problems = append(*problems, fmt.Errorf("%s: %q is not supported; Cairn exports over http/protobuf", v, p))
		}
	}
	if headers != "" {
		t.Headers = map[string]string{}
		for _, kv := range strings.Split(headers, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			uv, err := url.QueryUnescape(strings.TrimSpace(v))
			if !ok || k == "" || err != nil {
				// The value may be an API key: never quote it.
				*problems = append(*problems, errors.New("OTEL_EXPORTER_OTLP_HEADERS: want key=value pairs separated by commas"))
				break
			}
			t.Headers[k] = uv
		}
	}
	return t
}
