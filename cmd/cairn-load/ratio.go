package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/loadgen"
)

type ratioOptions struct {
	bin         string
	dbServer    string
	concurrency int
	duration    time.Duration
	rounds      int
	minRatio    float64
	json        bool
	plan        string  // the key's plan: free, pro or enterprise
	rate        float64 // open loop at this many requests per second (0: closed loop)
}

// ratioResult is the -ratio report.
type ratioResult struct {
	Healthz     loadgen.Result `json:"healthz"`
	Me          loadgen.Result `json:"me"`
	Ratio       float64        `json:"ratio"`
	Concurrency int            `json:"concurrency"`
	CPUs        int            `json:"cpus"`
	Plan        string         `json:"plan"`
	Rate        float64        `json:"offered_rate,omitempty"`
	// CPU time the server process spent per request (user + system, from
	// /proc/<pid>/stat; 0 where that is unavailable). Unlike throughput it hardly
	// moves with what else the machine runs, and CPUHealthz/CPUMe is the ratio
	// a server with the machine to itself would approach.
	CPUHealthz time.Duration `json:"server_cpu_per_request_healthz_ns"`
	CPUMe      time.Duration `json:"server_cpu_per_request_me_ns"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average around the
	// run (/proc/loadavg; -1 where unavailable). The throughput ratio is only
	// comparable between runs whose load is alike: other processes take CPU from the
	// server and the generator unevenly between the two endpoints' rounds.
	LoadBefore float64 `json:"load_average_before"`
	LoadAfter  float64 `json:"load_average_after"`
}

func (r ratioResult) String() string {
	out := fmt.Sprintf("%s\n%s\n\nGET /v1/me (%s key) ÷ GET /healthz = %.0f ÷ %.0f req/s = %.2f (target ≥ 0.8); %d connections, %d CPUs",
		r.Healthz, r.Me, r.Plan, r.Me.RPS, r.Healthz.RPS, r.Ratio, r.Concurrency, r.CPUs)
	if r.Rate > 0 {
		out += fmt.Sprintf("\nopen loop at %.0f req/s offered: the ratio only says whether both kept up; compare latencies", r.Rate)
	}
	if r.CPUHealthz > 0 && r.CPUMe > 0 {
		out += fmt.Sprintf("\nserver CPU per request: /healthz %.1f µs, /v1/me %.1f µs (ratio %.2f)",
			float64(r.CPUHealthz)/1e3, float64(r.CPUMe)/1e3, float64(r.CPUHealthz)/float64(r.CPUMe))
	}
	if r.LoadBefore >= 0 {
		out += fmt.Sprintf("\nload average %.1f before, %.1f after, on %d CPUs", r.LoadBefore, r.LoadAfter, r.CPUs)
		if busy := float64(r.CPUs) / 2; r.LoadBefore > busy || r.LoadAfter > busy+1 {
			out += "\nthe machine was busy: this ratio is not comparable with docs/benchmarks.md's quiet-machine figure; the CPU per request is the steadier figure"
		}
	}
	return out
}

// loadAverage returns the 1-minute load average, or -1 where /proc/loadavg is missing.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return -1
	}
	return f
}

// runRatio starts the cairn binary on a scratch database, signs up an account
// through the sign-up form, mints a key with "cairn admin create-key", and measures
// both endpoints with the same generator, alternating rounds so that drift in the
// machine's load affects both alike.
func runRatio(ctx context.Context, o ratioOptions, stdout io.Writer) error {
	loadBefore := loadAverage()
	env := []string{
		// Take rate limits and quotas out of the measurement: it is the hot path's
		// cost that is measured (the limiter still runs), not the plan's limits.
		"CAIRN_PLAN_" + strings.ToUpper(o.plan) + "_RATE_PER_MINUTE=1000000000",
	}
	if o.plan != "free" {
		env = append(env, "CAIRN_PLAN_"+strings.ToUpper(o.plan)+"_REQUESTS_PER_MONTH=unlimited")
	}
	srv, err := startServer(ctx, o.bin, o.dbServer, o.plan, env...)
	if err != nil {
		return err
	}
	defer srv.stop()
	base := srv.base
	auth := http.Header{"Authorization": {"Bearer " + srv.key}}
	if err := expectOK(base+"/v1/me", auth); err != nil {
		return err
	}

	healthz := loadgen.Options{URL: base + "/healthz", Concurrency: o.concurrency, Rate: o.rate}
	me := loadgen.Options{URL: base + "/v1/me", Header: auth, Concurrency: o.concurrency, Rate: o.rate}
	// Warm up both paths (connections, caches, the Go runtime) before measuring.
	for _, opts := range []loadgen.Options{healthz, me} {
		opts.Duration = time.Second
		if _, err := loadgen.Run(ctx, opts); err != nil {
			return err
		}
	}
	var hs, ms []loadgen.Result
	var cpuH, cpuM time.Duration
	for range max(1, o.rounds) {
		for _, step := range []struct {
			opts loadgen.Options
			out  *[]loadgen.Result
			cpu  *time.Duration
		}{{healthz, &hs, &cpuH}, {me, &ms, &cpuM}} {
			step.opts.Duration = o.duration
			before := processCPU(srv.pid)
			r, err := loadgen.Run(ctx, step.opts)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			*step.cpu += processCPU(srv.pid) - before
			*step.out = append(*step.out, r)
		}
	}
	res := ratioResult{Healthz: merge(hs), Me: merge(ms), Concurrency: o.concurrency, CPUs: runtime.NumCPU(), Plan: o.plan, Rate: o.rate,
		LoadBefore: loadBefore, LoadAfter: loadAverage()}
	if res.Healthz.Requests > 0 && res.Me.Requests > 0 && cpuH > 0 {
		res.CPUHealthz = cpuH / time.Duration(res.Healthz.Requests)
		res.CPUMe = cpuM / time.Duration(res.Me.Requests)
	}
	if res.Healthz.OK() != res.Healthz.Requests || res.Me.OK() != res.Me.Requests {
		return fmt.Errorf("some responses were not 2xx, the figures would mislead:\n%s", res)
	}
	res.Ratio = res.Me.RPS / res.Healthz.RPS
	if err := print(stdout, o.json, res); err != nil {
		return err
	}
	if o.minRatio > 0 && res.Ratio < o.minRatio {
		return fmt.Errorf("ratio %.2f is below %.2f", res.Ratio, o.minRatio)
	}
	return nil
}

// processCPU returns the user and system CPU time process pid has used, from
// /proc/<pid>/stat (clock ticks of 10 ms, as on every Linux the tool runs on);
// 0 where there is no /proc.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after it don't.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// merge sums rounds: requests and time add up; latency percentiles are the
// worst round's, which is the cautious reading.
func merge(rs []loadgen.Result) loadgen.Result {
	out := loadgen.Result{URL: rs[0].URL, Statuses: map[int]int{}}
	for _, r := range rs {
		out.Requests += r.Requests
		out.Errors += r.Errors
		out.Elapsed += r.Elapsed
		for s, n := range r.Statuses {
			out.Statuses[s] += n
		}
		out.Latency.P50 = max(out.Latency.P50, r.Latency.P50)
		out.Latency.P90 = max(out.Latency.P90, r.Latency.P90)
		out.Latency.P99 = max(out.Latency.P99, r.Latency.P99)
		out.Latency.Max = max(out.Latency.Max, r.Latency.Max)
		if out.FirstError == "" {
			out.FirstError = r.FirstError
		}
	}
	out.RPS = float64(out.Requests) / out.Elapsed.Seconds()
	return out
}

// cleanEnv is this process's environment without Cairn's own variables, so a
// developer's shell settings (a REDIS_URL, plan overrides) don't skew the run.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "CAIRN_PLAN_"), name == "DATABASE_URL", name == "LISTEN_ADDR", name == "BASE_URL",
			name == "REDIS_URL", name == "STRIPE_SECRET_KEY", name == "OPENAI_API_KEY", name == "PINECONE_API_KEY":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(ctx context.Context, base string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("cairn serve exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cairn serve was not ready within 60s")
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signUp creates an account through the dashboard's form contract.
func signUp(base, email, password string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/signup")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRe.FindSubmatch(page)
	if m == nil {
		return fmt.Errorf("sign-up page has no _csrf field")
	}
	resp, err = c.PostForm(base+"/signup", url.Values{"_csrf": {string(m[1])}, "email": {email}, "password": {password}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("sign up: status %d", resp.StatusCode)
	}
	return nil
}

func admin(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, append([]string{"admin"}, args...)...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cairn admin %s: %w: %s", args[0], err, errOut.String())
	}
	return strings.TrimSpace(out.String()), nil
}

func expectOK(u string, h http.Header) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return nil
}

func dropDatabase(server, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
