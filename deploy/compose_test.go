package deploy

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// composeFile is the part of the Compose specification compose.yaml uses, decoded
// strictly so that a misspelt key (depend_on, healthchek) fails the test rather than
// being ignored by this test and then by Docker.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `json:"subnet"`
			} `json:"config"`
		} `json:"ipam"`
	} `json:"networks"`
	Volumes map[string]struct{} `json:"volumes"`
	// Extension fields (x-…) hold the anchors the services share.
	XCairn composeService `json:"x-cairn"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string            `json:"context"`
		Dockerfile string            `json:"dockerfile"`
		Args       map[string]string `json:"args"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Restart     string            `json:"restart"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	Healthcheck *struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		Retries     int      `json:"retries"`
		StartPeriod string   `json:"start_period"`
	} `json:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Networks any `json:"networks"` // a list of names, or names with options
}

func decodeCompose(data []byte) (composeFile, error) {
	var c composeFile
	err := yaml.UnmarshalStrict(data, &c)
	return c, err
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCompose(data)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

var pinnedImage = regexp.MustCompile(`^[a-z0-9.\-/]+:v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$`)

// TestComposeFile checks deploy/compose.yaml's structure, since Docker cannot run
// here: the services of the architecture, pinned images, health checks, start-up
// order on those checks, and nginx and Prometheus pointing at the replicas.
func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	var replicas []string
	for name := range c.Services {
		if strings.HasPrefix(name, "cairn-") {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, []string{"cairn-1", "cairn-2", "cairn-3"}) {
		t.Fatalf("replicas %v, want cairn-1, cairn-2 and cairn-3", replicas)
	}
	for _, want := range []string{"postgres", "redis", "migrate", "nginx", "mailpit", "prometheus"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	for name, s := range c.Services {
		if !pinnedImage.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		for dep, d := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
				continue
			}
			switch d.Condition {
			case "service_healthy":
				if target.Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case "service_completed_successfully", "service_started":
			default:
				t.Errorf("%s depends on %s with condition %q", name, dep, d.Condition)
			}
		}
	}
	for _, name := range []string{"postgres", "redis", "nginx", "cairn-1", "cairn-2", "cairn-3"} {
		if hc := c.Services[name].Healthcheck; hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
			t.Errorf("%s: want a healthcheck in exec form, got %+v", name, hc)
		}
	}
	migrate := c.Services["migrate"]
	if !slices.Equal(migrate.Command, []string{"migrate"}) || migrate.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("migrate: command %v after postgres %q, want migrate once postgres is healthy", migrate.Command, migrate.DependsOn["postgres"].Condition)
	}
	for _, r := range replicas {
		s := c.Services[r]
		if s.Image != migrate.Image {
			t.Errorf("%s runs %s, the migration %s", r, s.Image, migrate.Image)
		}
		if !slices.Equal(s.Healthcheck.Test, []string{"CMD", "/cairn", "healthcheck"}) {
			t.Errorf("%s: healthcheck %v, want cairn healthcheck", r, s.Healthcheck.Test)
		}
		for dep, cond := range map[string]string{"migrate": "service_completed_successfully", "postgres": "service_healthy", "redis": "service_healthy"} {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s starts after %s is %q, want %s", r, dep, got, cond)
			}
		}
		if s.Environment["MIGRATE"] != "false" || s.Environment["REDIS_URL"] == "" || !strings.Contains(s.Environment["SMTP_URL"], "mailpit") {
			t.Errorf("%s: want MIGRATE=false, REDIS_URL and SMTP_URL to mailpit: %v", r, s.Environment)
		}
		known := config.Variables()
		for k := range s.Environment {
			if !slices.Contains(known, k) && readElsewhere[k] == "" {
				t.Errorf("%s sets %s, which Cairn does not read", r, k)
			}
		}
		if c.Services["nginx"].DependsOn[r].Condition != "service_healthy" {
			t.Errorf("nginx does not wait for %s to be healthy", r)
		}
	}

	// nginx's upstream is the replicas, on their app port.
	nginx := c.Services["nginx"]
	if !slices.Contains(nginx.Volumes, "./nginx/compose.conf:/etc/nginx/conf.d/default.conf:ro") {
		t.Errorf("nginx does not mount nginx/compose.conf: %v", nginx.Volumes)
	}
	conf, err := os.ReadFile("nginx/compose.conf")
	if err != nil {
		t.Fatal(err)
	}
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server (\S+) `).FindAllStringSubmatch(string(conf), -1) {
		upstreams = append(upstreams, m[1])
	}
	_, appPort, _ := strings.Cut(c.Services["cairn-1"].Environment["LISTEN_ADDR"], ":")
	if want := withPort(replicas, appPort); !slices.Equal(upstreams, want) {
		t.Errorf("nginx upstream %v, want %v", upstreams, want)
	}
	// Its address is the one the replicas trust for X-Forwarded-For.
	if ip := nginxAddress(nginx); c.Services["cairn-1"].Environment["TRUSTED_PROXIES"] != ip+"/32" {
		t.Errorf("TRUSTED_PROXIES %q, nginx is at %q", c.Services["cairn-1"].Environment["TRUSTED_PROXIES"], ip)
	}

	// Prometheus scrapes every replica's metrics listener.
	prom, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		Global        map[string]string `json:"global"`
		RuleFiles     []string          `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.UnmarshalStrict(prom, &pc); err != nil || len(pc.ScrapeConfigs) != 1 || len(pc.ScrapeConfigs[0].StaticConfigs) != 1 {
		t.Fatalf("prometheus.yml: %v %+v", err, pc)
	}
	_, metricsPort, _ := strings.Cut(c.Services["cairn-1"].Environment["METRICS_ADDR"], ":")
	if got, want := pc.ScrapeConfigs[0].StaticConfigs[0].Targets, withPort(replicas, metricsPort); metricsPort == "" || !slices.Equal(got, want) {
		t.Errorf("Prometheus scrapes %v, want the replicas' metrics ports %v", got, want)
	}
	for _, mount := range []string{"./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro", "./prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro"} {
		if !slices.Contains(c.Services["prometheus"].Volumes, mount) {
			t.Errorf("prometheus does not mount %s", mount)
		}
	}
	if !slices.Equal(pc.RuleFiles, []string{"/etc/prometheus/alerts.yaml"}) {
		t.Errorf("prometheus.yml loads rules %v, want the mounted alerts.yaml", pc.RuleFiles)
	}
}

func withPort(hosts []string, port string) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h + ":" + port
	}
	return out
}

func nginxAddress(s composeService) string {
	nets, _ := s.Networks.(map[string]any)
	for _, n := range nets {
		if opts, ok := n.(map[string]any); ok {
			if ip, ok := opts["ipv4_address"].(string); ok {
				return ip
			}
		}
	}
	return ""
}

// TestComposeFileTypoFails: the strict decoding catches a misspelt key.
func TestComposeFileTypoFails(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, typo := range [][2]string{
		{"    depends_on:\n      postgres: {condition: service_healthy}\n    networks: [cairn]\n\n  cairn-1", "    depend_on:\n      postgres: {condition: service_healthy}\n    networks: [cairn]\n\n  cairn-1"},
		{"  healthcheck:\n    test: [\"CMD\", \"/cairn\"", "  healthchek:\n    test: [\"CMD\", \"/cairn\""},
		{"start_period: 60s", "startperiod: 60s"},
	} {
		if strings.Count(string(data), typo[0]) != 1 {
			t.Fatalf("%q does not occur once in compose.yaml (update the test)", typo[0])
		}
		if _, err := decodeCompose([]byte(strings.Replace(string(data), typo[0], typo[1], 1))); err == nil {
			t.Errorf("compose.yaml with %q decoded", strings.Fields(typo[1])[0])
		}
	}
}

// composeNginx is deploy/nginx/cairn.conf for compose.yaml: the same proxying, with
// the compose replicas as upstream, plain HTTP on port 80 inside the compose network
// (compose publishes it on localhost:8080), and no certificates or redirect.
func composeNginx(t *testing.T, shipped string, replicas []string) string {
	t.Helper()
	s := nginxSite{Replicas: replicas}
	out := s.render(t, shipped) // only the upstream; the listen lines are replaced below
	for _, sub := range [][2]string{
		{"# nginx in front of several Cairn replicas: include this file in the http {} block\n# of nginx.conf. Runs as shipped on nginx 1.22 (Debian 12) and later (see \"listen\"\n# below). ",
			"# nginx in front of compose.yaml's replicas, plain HTTP inside the compose network.\n# Generated from cairn.conf (CAIRN_UPDATE=1 go test ./deploy -run TestComposeNginx):\n# do not edit; edit cairn.conf.\n# "},
		{"listen  ssl http2;", "listen 80;"},
		{"server_name cairn.example.com;\n    ssl_certificate     ;\n    ssl_certificate_key ;\n    ssl_protocols       TLSv1.2 TLSv1.3;\n", "server_name _;\n"},
	} {
		if n := strings.Count(out, sub[0]); n != 1 {
			t.Fatalf("nginx/cairn.conf: %q occurs %d times, want once", sub[0], n)
		}
		out = strings.Replace(out, sub[0], sub[1], 1)
	}
	// The redirect to https and the http2 advice do not apply.
	redirect := regexp.MustCompile(`(?s)\n\nserver \{\n    listen ;\n.*?return 301 [^\n]*\n\}\n$`)
	http2 := regexp.MustCompile(`(?m)^    # "listen … http2".*\n(    #.*\n)*`)
	if !redirect.MatchString(out) || !http2.MatchString(out) {
		t.Fatal("nginx/cairn.conf: the redirect server or the http2 comment changed shape (update composeNginx)")
	}
	out = http2.ReplaceAllString(redirect.ReplaceAllString(out, "\n"), "")
	return out
}

// TestComposeNginx: nginx/compose.conf is cairn.conf made for compose.yaml, never
// a copy that drifts from it.
func TestComposeNginx(t *testing.T) {
	shipped, err := os.ReadFile("nginx/cairn.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := composeNginx(t, string(shipped), withPort([]string{"cairn-1", "cairn-2", "cairn-3"}, "8080"))
	if os.Getenv("CAIRN_UPDATE") != "" {
		if err := os.WriteFile("nginx/compose.conf", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("nginx/compose.conf")
	if err != nil || string(got) != want {
		t.Fatalf("nginx/compose.conf is not cairn.conf made for compose (%v); run CAIRN_UPDATE=1 go test ./deploy -run TestComposeNginx", err)
	}
}

// TestDockerImage: the Dockerfile probes with cairn healthcheck, and .dockerignore
// keeps out what the build does not need but not what it does.
func TestDockerImage(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*CMD \["/cairn", "healthcheck"\]$`).Match(df) {
		t.Error("the Dockerfile has no HEALTHCHECK running cairn healthcheck")
	}
	for _, from := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(df), -1) {
		if strings.HasSuffix(from[1], ":latest") || !strings.Contains(from[1], ":") {
			t.Errorf("base image %s is not pinned", from[1])
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(string(ignore), ""))
	if !slices.Contains(lines, ".git") {
		t.Error(".dockerignore does not keep .git out")
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "db", "static", "views"} {
		for _, l := range lines {
			if strings.TrimPrefix(strings.TrimSuffix(l, "/"), "/") == needed || l == "*" {
				t.Errorf(".dockerignore leaves %s out, which the build needs", needed)
			}
		}
	}
}

// TestComposeNginxServes runs nginx/compose.conf as nginx would in compose.yaml, with
// the compose replicas' names pointed at a replica on loopback: it accepts the file,
// proxies to the replica and never serves /metrics.
func TestComposeNginxServes(t *testing.T) {
	bin := nginxBinary(t)
	conf, err := os.ReadFile("nginx/compose.conf")
	if err != nil {
		t.Fatal(err)
	}
	replica := servertest.Start(t, nil)
	site := regexp.MustCompile(`cairn-\d:8080`).ReplaceAllString(string(conf), strings.TrimPrefix(replica.URL, "http://"))
	addr := freeAddr(t)
	if strings.Count(site, "listen 80;") != 1 {
		t.Fatal("nginx/compose.conf does not listen on port 80 once")
	}
	site = strings.Replace(site, "listen 80;", "listen "+addr+";", 1)
	startNginx(t, bin, t.TempDir(), site, nil)
	get := func(path string) *http.Response {
		t.Helper()
		var resp *http.Response
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err = http.Get("http://" + addr + path); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("/readyz"); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("GET /readyz through compose nginx = %d (request id %q), want 200 from the replica", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	if resp := get("/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics through compose nginx = %d, want 404", resp.StatusCode)
	}
}
