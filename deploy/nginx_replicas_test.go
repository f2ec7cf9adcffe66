package deploy

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestNginxThreeReplicasUnderLoad runs the shipped nginx configuration in front of
// three replicas (real processes) while clients search (POST /v1/search) and read
// their key (GET /v1/me) through it. One replica gets SIGTERM and is restarted:
// no request may fail, and nginx must send it traffic again soon after. Then
// another is killed with SIGKILL: requests it held are retried elsewhere. The
// figures (errors, time to rejoin, requests per replica) are logged.
func TestNginxThreeReplicasUnderLoad(t *testing.T) {
	nginxBin := nginxBinary(t)
	if testing.Short() {
		t.Skip("-short: the nginx test builds the binary and runs for about half a minute")
	}
	bin := servertest.Binary(t)
	dbURL := dbtest.New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cfg, err := config.Load(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	acct := servertest.NewAccountIn(t, pool, cfg.Plans, plan.Enterprise)

	env := map[string]string{"CAIRN_PLAN_ENTERPRISE_RATE_PER_MINUTE": "1000000000"} // SHUTDOWN_DRAIN: the default
	replicas := make([]*servertest.Process, 3)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() { defer wg.Done(); replicas[i] = servertest.StartProcess(t, bin, dbURL, env) }()
	}
	wg.Wait()
	for _, r := range replicas {
		if r == nil {
			t.FailNow() // StartProcess reported why
		}
	}

	dir := t.TempDir()
	cert, certFile, keyFile := selfSigned(t, dir)
	shipped, err := os.ReadFile(filepath.Join("nginx", "cairn.conf"))
	if err != nil {
		t.Fatal(err)
	}
	site := &nginxSite{HTTPS: freeAddr(t), HTTP: freeAddr(t), CertFile: certFile, Key: keyFile}
	for _, r := range replicas {
		site.Replicas = append(site.Replicas, r.Addr)
	}
	ngx := startNginx(t, nginxBin, dir, site.render(t, string(shipped)), cert)
	client := httpsClient(cert, site.HTTPS)
	base := "https://cairn.example.com"

	send := func(method, path, body string) (int, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acct.Key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, err := send("POST", "/v1/documents", `{"documents":[{"id":"kites","title":"Kites","text":"Kites fly best on windy beaches in spring, when the sea breeze is steady."}]}`)
		if err == nil && status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /v1/documents through nginx: %d %v\n%s", status, err, ngx.errorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Run("RedirectsHTTPToHTTPS", func(t *testing.T) {
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := plain.Get("http://" + site.HTTP + "/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://") {
			t.Fatalf("plain HTTP = %d Location %q, want 301 to https", resp.StatusCode, loc)
		}
	})
	t.Run("MetricsNeverRouted", func(t *testing.T) {
		if status, err := send("GET", "/metrics", ""); err != nil || status != http.StatusNotFound {
			t.Fatalf("GET /metrics through nginx = %d %v, want 404", status, err)
		}
	})

	// The load: closed loops, bounded by stop, each request with its own timeout.
	rec := &recorder{}
	stop := make(chan struct{})
	var load sync.WaitGroup
	for i := range 6 {
		load.Add(1)
		go func() {
			defer load.Done()
			method, path, body, what := "GET", "/v1/me", "", "GET /v1/me"
			if i%2 == 0 {
				method, path, body, what = "POST", "/v1/search", `{"query":"windy beaches","mode":"hybrid"}`, "POST /v1/search"
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				at := time.Now()
				status, err := send(method, path, body)
				rec.add(outcome{at: at, what: what, status: status, err: err})
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); load.Wait() })
	defer stopLoad()

	time.Sleep(2 * time.Second)
	for _, r := range replicas {
		if served(r) == 0 {
			t.Fatalf("%s got no traffic through nginx before any was stopped", r)
		}
	}

	// SIGTERM, then restart in the same place.
	termAt := time.Now()
	if err := replicas[0].Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !replicas[0].Wait(45 * time.Second) {
		t.Fatalf("%s did not exit within 45s of SIGTERM", replicas[0])
	}
	exitedAt := time.Now()
	replicas[0].Restart(t)
	readyAt := time.Now()
	var rejoinedAt time.Time
	for rejoinedAt.IsZero() {
		if served(replicas[0]) > 0 {
			rejoinedAt = time.Now()
			break
		}
		if time.Since(readyAt) > 15*time.Second {
			t.Fatalf("%s, restarted and ready, got no traffic through nginx for 15s", replicas[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)

	// kill -9 another.
	killAt := time.Now()
	replicas[1].Kill()
	time.Sleep(3 * time.Second)
	before := [3]int{served(replicas[0]), 0, served(replicas[2])}
	time.Sleep(time.Second)
	endAt := time.Now()
	stopLoad()
	after := [3]int{served(replicas[0]), 0, served(replicas[2])}

	termAll, termFailed := rec.between(termAt, killAt)
	killAll, killFailed := rec.between(killAt, endAt)
	t.Logf("SIGTERM and restart: %d requests, %d failed; replica exited %.1fs after SIGTERM (SHUTDOWN_DRAIN 5s); rejoined %.2fs after it was ready",
		len(termAll), len(termFailed), exitedAt.Sub(termAt).Seconds(), rejoinedAt.Sub(readyAt).Seconds())
	t.Logf("kill -9: %d requests, %d failed%s", len(killAll), len(killFailed), describe(killFailed))
	t.Logf("in the last second: restarted replica served %d, the untouched one %d (upstream options %q)",
		after[0]-before[0], after[2]-before[2], site.UpstreamOptions)
	if len(termFailed) > 0 {
		t.Errorf("%d of %d requests failed through SIGTERM and restart, want 0:%s", len(termFailed), len(termAll), describe(termFailed))
	}
	// Only a POST that writes may be lost with a killed replica; these two routes
	// are retried on another.
	if len(killFailed) > 0 {
		t.Errorf("%d of %d requests failed through kill -9, want 0 (GET and search are retried):%s", len(killFailed), len(killAll), describe(killFailed))
	}
	if after[0] == before[0] {
		t.Errorf("the restarted replica got no traffic after the other was killed")
	}
	if t.Failed() {
		t.Logf("nginx error log:\n%s", ngx.errorLog())
	}
}

// served counts the /v1 requests the replica's current run has logged.
func served(p *servertest.Process) int {
	n := 0
	for _, line := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"route":"/v1/`) {
			n++
		}
	}
	return n
}
