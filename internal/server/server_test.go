package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func TestSecurityHeaders(t *testing.T) {
	inst := servertest.Start(t, nil)
	for _, path := range []string{"/", "/login", "/signup", "/no-such-page"} {
		t.Run("HTML"+strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			resp, err := http.Get(inst.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("Content-Type %q", h.Get("Content-Type"))
			}
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
				t.Errorf("CSP allows inline scripts")
			}
			for k, v := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "strict-origin-when-cross-origin",
				"X-Frame-Options":        "DENY",
			} {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
	t.Run("APIGetsNosniffNotCSP", func(t *testing.T) {
		resp, err := http.Get(inst.URL + "/v1/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "" {
			t.Fatalf("API headers: %v", resp.Header)
		}
	})
}

func TestRequestID(t *testing.T) {
	inst := servertest.Start(t, nil)
	send := func(id string) string {
		req, _ := http.NewRequest(http.MethodGet, inst.URL+"/v1/me", nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		got := resp.Header.Get("X-Request-ID")
		if !strings.Contains(body, `"request_id":"`+got+`"`) {
			t.Fatalf("body %s does not carry request id %q", body, got)
		}
		return got
	}
	t.Run("EchoesValid", func(t *testing.T) {
		for _, id := range []string{"abc-123", "trace_01HZX.4:2", strings.Repeat("a", 128)} {
			if got := send(id); got != id {
				t.Fatalf("sent %q, got back %q", id, got)
			}
		}
	})
	t.Run("ReplacesInvalid", func(t *testing.T) {
		for _, id := range []string{"has space", "quote\"", strings.Repeat("a", 129), "<script>", "naïve"} {
			got := send(id)
			if got == id || got == "" {
				t.Fatalf("sent invalid %q, got back %q", id, got)
			}
		}
	})
	t.Run("MadeWhenAbsent", func(t *testing.T) {
		a, b := send(""), send("")
		if a == "" || a == b {
			t.Fatalf("generated ids %q and %q", a, b)
		}
	})
	t.Run("InLogs", func(t *testing.T) {
		send("find-me-in-the-log")
		if !strings.Contains(inst.Logs(), `"request_id":"find-me-in-the-log"`) {
			t.Fatalf("the access log does not carry the request id")
		}
	})
}

func TestHealth(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"ADMIN_TOKEN": "operator-token"})
	for _, tc := range []struct {
		path, auth string
		status     int
		want       string
	}{
		{"/healthz", "", 200, "ok"},
		{"/readyz", "", 200, "ready"},
		{"/health/detailed", "", 404, ""},
		{"/health/detailed", "Bearer wrong", 404, ""},
		{"/health/detailed", "Bearer operator-token", 200, `"status":"healthy"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, inst.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s (%q): %d %s, want %d with %q", tc.path, tc.auth, resp.StatusCode, body, tc.status, tc.want)
		}
	}
}

func TestNotFound(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	resp := inst.Do(t, http.MethodGet, "/v1/nope", acct.Key, "")
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("/v1/nope: %d %s", resp.StatusCode, body)
	}
	resp, err := http.Get(inst.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	body = servertest.ReadBody(t, resp)
	if resp.StatusCode != 404 || !strings.Contains(body, "<html") {
		t.Fatalf("/nope: %d, want an HTML 404 page", resp.StatusCode)
	}
}

// TestGracefulShutdownDrainsInFlight starts a request whose body is held back,
// begins shutting the replica down while its handler waits for the body, and
// checks that the request still gets its whole response while new connections
// are refused.
func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	inst := servertest.Start(t, nil)
	addr := strings.TrimPrefix(inst.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	form := "email=ada%40example.com&password=correct+horse+battery"
	// With Expect: 100-continue the server answers "100 Continue" only once the
	// handler starts reading the body: then the request is certainly accepted and
	// in flight (a connection still in the kernel's backlog would be reset by the
	// shutdown, which is not what this test is about).
	fmt.Fprintf(conn, "POST /signup HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(form))
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue, got %v %v", cont, err)
	}

	// Shutdown waits for the in-flight request, so run it aside.
	stopped := make(chan struct{})
	go func() {
		inst.Stop()
		close(stopped)
	}()
	// Shutdown closes the listener first: once new connections are refused, the
	// drain has begun.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the replica kept accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-stopped:
		t.Fatal("the replica stopped without waiting for the in-flight request")
	default:
	}
	if _, err := io.WriteString(conn, form); err != nil {
		t.Fatalf("finishing the request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the in-flight request got no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// No CSRF token: the handler chain ran and refused it, which is a whole answer.
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "</html>") {
		t.Fatalf("in-flight request: %d, %d bytes; want the full 403 page", resp.StatusCode, len(body))
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the replica did not finish shutting down")
	}
}

// TestClientAddress: per-address limits count the peer unless it is a trusted proxy,
// so rotating X-Forwarded-For from an untrusted address (a VPN, a pod, an L4
// balancer) resets nothing; behind a trusted proxy each client counts as itself,
// an IPv6 client as its /64.
func TestClientAddress(t *testing.T) {
	keyless := func(t *testing.T, inst *servertest.Instance, xff string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", inst.URL+"/v1/me", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("NobodyIsTrustedByDefault", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_IP_PER_DAY": "3"})
		for i := range 3 {
			if got := keyless(t, inst, fmt.Sprintf("198.51.100.%d", i)); got != http.StatusUnauthorized {
				t.Fatalf("call %d: %d, want 401", i, got)
			}
		}
		if got := keyless(t, inst, "198.51.100.99"); got != http.StatusTooManyRequests {
			t.Fatalf("a fourth keyless call with a new X-Forwarded-For: %d, want 429", got)
		}
	})
	t.Run("BehindATrustedProxyEachClientCounts", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_IP_PER_DAY": "2", "TRUSTED_PROXIES": "127.0.0.1/32"})
		for _, xff := range []string{"198.51.100.1", "9.9.9.9, 198.51.100.1"} { // what a client prepends is not believed
			if got := keyless(t, inst, xff); got != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", xff, got)
			}
		}
		if got := keyless(t, inst, "8.8.8.8, 198.51.100.1"); got != http.StatusTooManyRequests {
			t.Fatalf("198.51.100.1's third call: %d, want 429", got)
		}
		if got := keyless(t, inst, "198.51.100.2"); got != http.StatusUnauthorized {
			t.Fatalf("another client: %d, want 401", got)
		}
	})
	t.Run("AnIPv6ClientCountsAsItsSlash64", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_IP_PER_DAY": "2", "TRUSTED_PROXIES": "127.0.0.1"})
		for _, xff := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
			if got := keyless(t, inst, xff); got != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", xff, got)
			}
		}
		if got := keyless(t, inst, "2001:db8:1:2:ffff:ffff:ffff:ffff"); got != http.StatusTooManyRequests {
			t.Fatalf("a third address of the same /64: %d, want 429", got)
		}
		if got := keyless(t, inst, "2001:db8:1:3::1"); got != http.StatusUnauthorized {
			t.Fatalf("the next /64: %d, want 401", got)
		}
	})
}

func TestHSTSWhenServedOverHTTPS(t *testing.T) {
	for base, want := range map[string]string{"https://cairn.example.com": "max-age=63072000; includeSubDomains", "": ""} {
		env := map[string]string{}
		if base != "" {
			env["BASE_URL"] = base
		}
		inst := servertest.Start(t, env)
		for _, path := range []string{"/login", "/v1/openapi.json"} {
			resp, err := http.Get(inst.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("BASE_URL %q, %s: Strict-Transport-Security %q, want %q", base, path, got, want)
			}
		}
	}
}

// TestClientThatGoesAwayIs499NotAnError: a client that hangs up while its request
// waits on a dependency is logged at info level with status 499, not as an
// internal error.
func TestClientThatGoesAwayIs499NotAnError(t *testing.T) {
	ai := openaitest.Start(t, "sk-server")
	ai.Fail(openaitest.Failure{Hang: true})
	inst := servertest.Start(t, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()})
	acct := inst.NewAccount(t, plan.Pro)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", inst.URL+"/v1/search", strings.NewReader(`{"query":"tides","mode":"semantic"}`))
	req.Header.Set("Authorization", "Bearer "+acct.Key)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered (%d) though its dependency hangs", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(inst.Logs(), `"status":499`) {
		if time.Now().After(deadline) {
			t.Fatalf("no request logged with status 499:\n%s", inst.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := inst.Logs()
	if strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, `"msg":"client went away"`) {
		t.Fatalf("a client going away was logged as an error, or not at all:\n%s", logs)
	}
}
