// Package servertest runs real Cairn replicas on loopback for tests: each gets its
// own listener, and tests choose whether replicas share a database.
package servertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/server"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Instance is one running replica.
type Instance struct {
	URL string
	// MetricsURL is the replica's metrics listener (http://host:port), "" when off.
	MetricsURL  string
	DatabaseURL string
	Config      config.Config
	Server      *server.Server
	logs        *syncBuffer
	stop        func()
}

// syncBuffer collects a replica's log lines for tests to search.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logs returns every JSON log line the replica has written so far, so tests can
// check what reaches the logs (and what must not, such as secrets).
func (i *Instance) Logs() string { return i.logs.String() }

// Start runs a replica on a fresh database. env sets configuration variables.
func Start(tb testing.TB, env map[string]string) *Instance {
	tb.Helper()
	return StartOn(tb, dbtest.New(tb), env)
}

// StartOn runs a replica on an existing database, e.g. a second replica of a first.
func StartOn(tb testing.TB, databaseURL string, env map[string]string) *Instance {
	tb.Helper()
	inst, err := launch(tb, databaseURL, env)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	tb.Cleanup(inst.stop)
	return inst
}

// StartMany runs n replicas on one database, all started at the same moment, as a
// deployment rolling out does; the database may not exist yet.
func StartMany(tb testing.TB, n int, databaseURL string, env map[string]string) []*Instance {
	tb.Helper()
	insts := make([]*Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			insts[i], errs[i] = launch(tb, databaseURL, env)
		}()
	}
	close(start)
	wg.Wait()
	for _, inst := range insts {
		if inst != nil {
			tb.Cleanup(inst.stop)
		}
	}
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("servertest: replica %d of %d: %v", i+1, n, err)
		}
	}
	return insts
}

// launch starts a replica and waits until it answers; it may run off the test's
// goroutine, so it reports errors instead of failing the test.
func launch(tb testing.TB, databaseURL string, env map[string]string) (*Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	vars := map[string]string{
		"DATABASE_URL": databaseURL, "BASE_URL": base, "LISTEN_ADDR": ln.Addr().String(),
		// Tests stop replicas at once unless they test draining.
		"SHUTDOWN_DRAIN": "0",
		// Many replicas share the machine: each its own metrics port (MetricsURL).
		"METRICS_ADDR": "127.0.0.1:0",
	}
	var environ []string
	for k, v := range env {
		vars[k] = v
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(func(k string) string { return vars[k] }, environ)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	logs := &syncBuffer{}
	var out io.Writer = logs
	if os.Getenv("CAIRN_TEST_LOG") != "" {
		out = io.MultiWriter(logs, os.Stderr)
	}
	log := slog.New(slog.NewJSONHandler(out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		cancel()
		ln.Close()
		return nil, fmt.Errorf("new server: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// Serve starts the workers before accepting; wait until the replica answers.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case serveErr := <-done:
			cancel()
			return nil, fmt.Errorf("replica stopped while starting: %w", serveErr)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return nil, fmt.Errorf("replica did not come up: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stopped atomic.Bool
	inst := &Instance{URL: base, DatabaseURL: databaseURL, Config: cfg, Server: srv, logs: logs}
	if a := srv.MetricsAddr(); a != "" {
		inst.MetricsURL = "http://" + a
	}
	inst.stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			tb.Errorf("servertest: replica did not stop within 30s")
		}
	}
	return inst, nil
}

// Stop shuts the replica down gracefully (as on SIGTERM) and waits for it.
func (i *Instance) Stop() { i.stop() }

// Account is a signed-up user with a workspace and, optionally, an API key.
type Account struct {
	Email       string
	UserID      uuid.UUID
	WorkspaceID uuid.UUID
	Key         string
}

var accountSeq atomic.Int64

// Password is the password of every account NewAccount makes.
const Password = "correct horse battery"

// NewAccount signs up a user directly through the services, marks their email
// verified, sets the workspace's plan and mints one API key.
func (i *Instance) NewAccount(tb testing.TB, p plan.ID) Account {
	tb.Helper()
	return NewAccountIn(tb, i.Server.Pool(), i.Config.Plans, p)
}

// NewAccountIn is NewAccount on a database reached through pool, for replicas that
// run as processes.
func NewAccountIn(tb testing.TB, pool *pgxpool.Pool, plans plan.Table, p plan.ID) Account {
	tb.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("user%d-%s@example.com", accountSeq.Add(1), uuid.NewString()[:8])
	users := auth.NewService(pool)
	u, ws, err := users.SignUp(ctx, email, Password)
	if err != nil {
		tb.Fatalf("servertest: sign up: %v", err)
	}
	if err := users.MarkVerified(ctx, u.ID); err != nil {
		tb.Fatalf("servertest: verify email: %v", err)
	}
	if p != plan.Free {
		if err := workspace.NewService(pool, plans).SetPlan(ctx, ws.ID, p, nil, "test"); err != nil {
			tb.Fatalf("servertest: set plan: %v", err)
		}
	}
	created, err := apikey.NewService(pool, plans, slog.New(slog.DiscardHandler)).Create(ctx, ws.ID, &u.ID, "test key")
	if err != nil {
		tb.Fatalf("servertest: create key: %v", err)
	}
	return Account{Email: email, UserID: u.ID, WorkspaceID: ws.ID, Key: created.Secret}
}

// VerifyEmail marks the account with email verified without its link, for tests
// that sign up through the form but are not about verification.
func (i *Instance) VerifyEmail(tb testing.TB, email string) {
	tb.Helper()
	ctx := context.Background()
	var id uuid.UUID
	if err := i.Server.Pool().QueryRow(ctx, "SELECT id FROM users WHERE lower(email) = lower($1)", email).Scan(&id); err != nil {
		tb.Fatalf("servertest: no account %s: %v", email, err)
	}
	if err := auth.NewService(i.Server.Pool()).MarkVerified(ctx, id); err != nil {
		tb.Fatalf("servertest: verify %s: %v", email, err)
	}
}

// Join makes acct a member of workspaceID with role (as an accepted invitation
// would) and returns a key acct made there.
func (i *Instance) Join(tb testing.TB, acct Account, workspaceID uuid.UUID, role string) string {
	tb.Helper()
	ctx := context.Background()
	if _, err := i.Server.Pool().Exec(ctx, `INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, $3)`,
		workspaceID, acct.UserID, role); err != nil {
		tb.Fatalf("servertest: join: %v", err)
	}
	created, err := apikey.NewService(i.Server.Pool(), i.Config.Plans, slog.New(slog.DiscardHandler)).Create(ctx, workspaceID, &acct.UserID, role+"'s key")
	if err != nil {
		tb.Fatalf("servertest: join: create key: %v", err)
	}
	return created.Secret
}

// NewKey mints another key in the account's workspace as spec says (scopes,
// expiry, kind) and returns its secret.
func (i *Instance) NewKey(tb testing.TB, acct Account, spec apikey.Spec) string {
	tb.Helper()
	created, err := apikey.NewService(i.Server.Pool(), i.Config.Plans, slog.New(slog.DiscardHandler)).
		CreateWith(context.Background(), acct.WorkspaceID, &acct.UserID, spec)
	if err != nil {
		tb.Fatalf("servertest: create key: %v", err)
	}
	return created.Secret
}

// Do sends an API request with key (if any) and a JSON body (if any).
func (i *Instance) Do(tb testing.TB, method, path, key string, body string) *http.Response {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, i.URL+path, r)
	if err != nil {
		tb.Fatalf("servertest: request: %v", err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("servertest: %s %s: %v", method, path, err)
	}
	return resp
}

// ReadBody reads and closes a response body.
func ReadBody(tb testing.TB, resp *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("servertest: read body: %v", err)
	}
	return string(b)
}

// Browser is a cookie-keeping HTTP client that fills in CSRF tokens, for dashboard
// tests that don't need a real browser.
type Browser struct {
	tb     testing.TB
	base   string
	Client *http.Client
}

// NewBrowser returns a Browser against the replica; redirects are not followed so
// tests can assert them.
func (i *Instance) NewBrowser(tb testing.TB) *Browser { return newBrowser(tb, i.URL) }

func newBrowser(tb testing.TB, base string) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{tb: tb, base: base, Client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// Get fetches a page and returns its status and body.
func (b *Browser) Get(path string) (int, string) {
	b.tb.Helper()
	resp, err := b.Client.Get(b.base + path)
	if err != nil {
		b.tb.Fatalf("browser: GET %s: %v", path, err)
	}
	return resp.StatusCode, ReadBody(b.tb, resp)
}

// CSRF loads page and returns the CSRF token in its first form.
func (b *Browser) CSRF(page string) string {
	b.tb.Helper()
	_, body := b.Get(page)
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		b.tb.Fatalf("browser: no _csrf field on %s", page)
	}
	return m[1]
}

// Post submits a form as is (tests add _csrf themselves) and returns the response
// with its body read.
func (b *Browser) Post(path string, form url.Values) (*http.Response, string) {
	b.tb.Helper()
	resp, err := b.Client.PostForm(b.base+path, form)
	if err != nil {
		b.tb.Fatalf("browser: POST %s: %v", path, err)
	}
	return resp, ReadBody(b.tb, resp)
}

// Send posts form (tests add _csrf themselves) with extra request headers, such as
// Referer or Accept, and returns the response unread.
func (b *Browser) Send(path string, form url.Values, header http.Header) *http.Response {
	b.tb.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.tb.Fatalf("browser: POST %s: %v", path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.Client.Do(req)
	if err != nil {
		b.tb.Fatalf("browser: POST %s: %v", path, err)
	}
	return resp
}

// Submit posts form to path with the CSRF token from page.
func (b *Browser) Submit(page, path string, form url.Values) (*http.Response, string) {
	b.tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", b.CSRF(page))
	return b.Post(path, form)
}

// Follow loads the page a redirect (a POST's 303) sends the browser to, as a
// browser would, and returns its status and body; any other response is returned
// as it is.
func (b *Browser) Follow(resp *http.Response, body string) (int, string) {
	b.tb.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return resp.StatusCode, body
	}
	return b.Get(resp.Header.Get("Location"))
}

// SignUp creates an account through the sign-up form and stays logged in.
func (b *Browser) SignUp(email, password string) {
	b.tb.Helper()
	resp, body := b.Submit("/signup", "/signup", url.Values{"email": {email}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		b.tb.Fatalf("browser: sign up %s: status %d: %s", email, resp.StatusCode, body)
	}
}

// SwitchTo makes workspaceID the session's current workspace through the
// sidebar's switcher.
func (b *Browser) SwitchTo(workspaceID uuid.UUID) {
	b.tb.Helper()
	resp, body := b.Submit("/dashboard/settings", "/dashboard/workspaces/"+workspaceID.String()+"/switch", nil)
	if resp.StatusCode != http.StatusSeeOther {
		b.tb.Fatalf("browser: switch to %s: status %d: %.300s", workspaceID, resp.StatusCode, body)
	}
}

// LogIn logs in through the log-in form.
func (b *Browser) LogIn(email, password string) {
	b.tb.Helper()
	resp, body := b.Submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		b.tb.Fatalf("browser: log in %s: status %d: %s", email, resp.StatusCode, body)
	}
}

// KeyRe matches an API key in a page.
var KeyRe = regexp.MustCompile(`ck_live_[0-9A-Za-z]{38}`)

// Eventually polls cond every 20 ms for up to 5 seconds, for effects that other
// goroutines or replicas apply shortly (flushed last-use times, notifications),
// and fails with msg if it never holds.
func Eventually(tb testing.TB, cond func() bool, msg string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metrics returns what the replica's metrics listener serves at /metrics.
func (i *Instance) Metrics(tb testing.TB) string {
	tb.Helper()
	if i.MetricsURL == "" {
		tb.Fatalf("servertest: the replica has no metrics listener (METRICS_ADDR=off)")
	}
	resp, err := http.Get(i.MetricsURL + "/metrics")
	if err != nil {
		tb.Fatalf("servertest: GET /metrics: %v", err)
	}
	body := ReadBody(tb, resp)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("servertest: GET /metrics: %d %s", resp.StatusCode, body)
	}
	return body
}
