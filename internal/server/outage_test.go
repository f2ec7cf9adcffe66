package server_test

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// dbProxy forwards TCP to PostgreSQL until cut, so a test can take the database
// away from one replica without touching the server every test shares.
type dbProxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
}

func startDBProxy(t *testing.T, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{target: target, ln: ln}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *dbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut refuses new connections and drops the open ones, as a crashed database would.
func (p *dbProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestDatabaseOutageIs503WithRetryAfter(t *testing.T) {
	direct, err := url.Parse(dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startDBProxy(t, direct.Host)
	viaProxy := *direct
	viaProxy.Host = proxy.ln.Addr().String()
	inst := servertest.StartOn(t, viaProxy.String(), nil)
	acct := inst.NewAccount(t, plan.Pro)
	if resp := inst.Do(t, "GET", "/v1/documents", acct.Key, ""); resp.StatusCode != 200 {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, servertest.ReadBody(t, resp))
	}

	proxy.cut()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/documents", ""},
		{"POST", "/v1/documents", `{"documents":[{"id":"a","text":"kept for later"}]}`},
		{"POST", "/v1/search", `{"query":"anything"}`},
		{"GET", "/v1/usage", ""},
	} {
		resp := inst.Do(t, tc.method, tc.path, acct.Key, tc.body)
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"unavailable"`) {
			t.Errorf("%s %s with the database down: %d Retry-After %q %s; want 503 unavailable with Retry-After",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
			t.Errorf("%s %s leaks connection details: %s", tc.method, tc.path, body)
		}
	}
	resp := inst.Do(t, "GET", "/readyz", "", "")
	if resp.StatusCode != 503 {
		t.Errorf("/readyz with the database down: %d, want 503", resp.StatusCode)
	}
	resp.Body.Close()
	// The dashboard says the same in HTML.
	b := inst.NewBrowser(t)
	if code, _ := b.Get("/login"); code != 503 {
		t.Errorf("GET /login with the database down: %d, want 503", code)
	}
}
