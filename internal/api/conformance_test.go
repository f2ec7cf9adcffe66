package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// TestMain runs the package's tests with every /v1 response they receive through
// http.DefaultClient checked against the OpenAPI document: its status, headers
// and body, strictly (an undeclared field or header is a mismatch). A route, status,
// header or field added without its description fails the run, naming it.
func TestMain(m *testing.M) {
	spec, err := os.ReadFile("openapi.json")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	conf, err := newConformance(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	// The client side only: the replicas under test make their own calls (OpenAI) too.
	http.DefaultClient.Transport = conf.wrap(http.DefaultTransport)
	code := m.Run()
	if mismatches := conf.report(); mismatches != "" {
		fmt.Fprintf(os.Stderr, "FAIL: responses that differ from openapi.json:\n%s", mismatches)
		code = 1
	}
	os.Exit(code)
}

// conformance validates responses against an OpenAPI document and collects the
// mismatches.
type conformance struct {
	v validator.Validator

	mu         sync.Mutex // the validator's caches are not documented as safe for concurrent use
	mismatches []string
	checked    int
}

func newConformance(spec []byte) (*conformance, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc,
		config.WithStrictMode(),
		// Free-form by design: metadata (any keys) and the document itself below its top level.
		config.WithStrictIgnorePaths("$.body.info**", "$.body.paths**", "$.body.components**", "$.body**.metadata**"),
		// Only what HTTP itself adds; X-Request-ID, RateLimit and the rest must be declared.
		config.WithStrictIgnoredHeaders("content-type", "content-length", "date", "vary", "transfer-encoding", "connection",
			"cache-control", "x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy",
			"cross-origin-opener-policy", "cross-origin-resource-policy", "permissions-policy", "strict-transport-security",
			"access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers",
			"access-control-allow-methods", "access-control-allow-headers", "access-control-max-age", "x-accel-buffering"),
	)
	if len(errs) > 0 {
		return nil, fmt.Errorf("build validator: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		var b strings.Builder
		for _, e := range errs {
			fmt.Fprintf(&b, "\n  %s: %s", e.Message, e.Reason)
		}
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document:%s", b.String())
	}
	return &conformance{v: v}, nil
}

// notAnOperation reports whether the validator found no operation for the request
// (an unknown route, a wrong method): there is nothing to match its response
// against. TestOpenAPIDescribesEveryRoute checks that every route is an operation.
func notAnOperation(errs []*liberrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationSubType == helpers.ValidationMissing || e.ValidationSubType == helpers.ValidationMissingOperation {
			return true
		}
	}
	return false
}

// check validates one response; body is its content, already read (nil for a
// stream). An NDJSON body's schema is that of each line, so each is checked alone.
func (c *conformance) check(req *http.Request, resp *http.Response, body []byte) {
	if !strings.HasPrefix(req.URL.EscapedPath(), "/v1/") {
		return
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") && len(bytes.TrimSpace(body)) > 0 {
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			c.checkOne(req, resp, line)
		}
		return
	}
	c.checkOne(req, resp, body)
}

func (c *conformance) checkOne(req *http.Request, resp *http.Response, body []byte) {
	path := req.URL.EscapedPath()
	copyResp := *resp
	copyResp.Body = http.NoBody
	if body != nil {
		copyResp.Body = io.NopCloser(bytes.NewReader(body))
	}
	copyReq := req.Clone(req.Context())
	copyReq.Body = http.NoBody
	c.mu.Lock()
	ok, errs := c.v.ValidateHttpResponse(copyReq, &copyResp)
	c.checked++
	c.mu.Unlock()
	if ok {
		return
	}
	if notAnOperation(errs) {
		// Refusals of unknown routes and methods are fine; anything else came from a
		// route the document does not describe.
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest && req.Method != http.MethodOptions {
			c.add(fmt.Sprintf("%s %s → %d from an operation openapi.json does not describe", req.Method, path, resp.StatusCode))
		}
		return
	}
	var lines []string
	for _, e := range errs {
		l := fmt.Sprintf("\n    %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			l += fmt.Sprintf("\n      %s (at %s)", se.Reason, se.KeywordLocation)
		}
		lines = append(lines, l)
	}
	sort.Strings(lines) // the validator's order varies; one mismatch is reported once
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %d%s", req.Method, path, resp.StatusCode, strings.Join(lines, ""))
	if len(body) > 0 {
		fmt.Fprintf(&b, "\n    body: %.300s", body)
	}
	c.add(b.String())
}

func (c *conformance) add(m string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mismatches = append(c.mismatches, m)
}

// report returns the mismatches, one distinct one a paragraph.
func (c *conformance) report() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var b strings.Builder
	for _, m := range c.mismatches {
		if !seen[m] {
			seen[m] = true
			fmt.Fprintf(&b, "  %s\n", m)
		}
	}
	return b.String()
}

// wrap returns a transport that checks every response it carries.
func (c *conformance) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || !strings.HasPrefix(req.URL.Path, "/v1/") {
			return resp, err
		}
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
			// A stream is read by the test as it arrives: check its status and headers only.
			c.check(req, resp, nil)
			return resp, nil
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			c.check(req, resp, body)
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestEveryOperationAnswersAsDocumented makes every operation give each answer it
// can be made to give from outside (success, malformed, no key, unknown document,
// too large, wrong media type, over the cap, rate-limited, a dependency down), so
// the check in TestMain sees every documented response at least once.
func TestEveryOperationAnswersAsDocumented(t *testing.T) {
	ai := openaitest.Start(t, "sk-server")
	limits := map[string]string{"CAIRN_PLAN_FREE_DOCUMENTS": "2", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "100000",
		"CAIRN_PLAN_PRO_RATE_PER_MINUTE": "1", "CAIRN_PLAN_FREE_IP_PER_DAY": "20"}
	inst := servertest.Start(t, env(limits, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()}))
	// A replica of the same database whose OpenAI cannot be reached, for the 503s.
	down := servertest.StartOn(t, inst.DatabaseURL, env(limits, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}))
	free, pro := inst.NewAccount(t, plan.Free), inst.NewAccount(t, plan.Pro)

	type request struct {
		method, path, key, contentType, body string
		replica                              *servertest.Instance
	}
	send := func(r request) int {
		t.Helper()
		if r.replica == nil {
			r.replica = inst
		}
		req, err := http.NewRequest(r.method, r.replica.URL+r.path, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.key != "" {
			req.Header.Set("Authorization", "Bearer "+r.key)
		}
		if r.contentType != "" {
			req.Header.Set("Content-Type", r.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		servertest.ReadBody(t, resp)
		return resp.StatusCode
	}
	expect := func(want int, r request) {
		t.Helper()
		if got := send(r); got != want {
			t.Errorf("%s %s %.60s: %d, want %d", r.method, r.path, r.body, got, want)
		}
	}

	const js = "application/json"
	tooBig := `{"query":"` + strings.Repeat("a", 10<<20) + `"}`
	posts := map[string]string{
		"/v1/documents": `{"documents":[{"id":"d1","text":"Tides turn twice a day.","metadata":{"lang":"en"}}]}`,
		"/v1/search":    `{"query":"tides","filter":{"lang":"en"}}`,
		"/v1/answer":    `{"question":"when do tides turn?"}`,
	}
	for _, path := range []string{"/v1/documents", "/v1/search", "/v1/answer"} {
		expect(200, request{"POST", path, free.Key, js, posts[path], nil})
		expect(400, request{"POST", path, free.Key, js, `{"unknown":1}`, nil})
		expect(401, request{"POST", path, "", js, posts[path], nil})
		expect(413, request{"POST", path, free.Key, js, tooBig, nil})
		expect(415, request{"POST", path, free.Key, "text/plain", posts[path], nil})
		expect(503, request{"POST", path, free.Key, js, strings.Replace(posts[path], `"d1"`, `"d9"`, 1), down})
	}
	expect(200, request{"POST", "/v1/answer", free.Key, js, `{"question":"when do tides turn?","stream":true}`, nil})
	expect(413, request{"POST", "/v1/documents", free.Key, js, `{"documents":[` + strings.Repeat(`{"text":"x"},`, 100) + `{"text":"x"}]}`, nil})
	expect(200, request{"POST", "/v1/documents", free.Key, js, `{"documents":[{"id":"d2","text":"Second."}]}`, nil})
	expect(403, request{"POST", "/v1/documents", free.Key, js, `{"documents":[{"id":"d3","text":"Over the cap."}]}`, nil})

	for _, path := range []string{"/v1/me", "/v1/usage", "/v1/documents", "/v1/documents?limit=1", "/v1/documents/d1", "/v1/export"} {
		expect(200, request{"GET", path, free.Key, "", "", nil})
		expect(401, request{"GET", path, "", "", "", nil})
	}
	expect(400, request{"GET", "/v1/documents?limit=0", free.Key, "", "", nil})
	expect(400, request{"GET", "/v1/documents?cursor=not-a-cursor", free.Key, "", "", nil})
	expect(404, request{"GET", "/v1/documents/nothing-here", free.Key, "", "", nil})
	expect(404, request{"DELETE", "/v1/documents/nothing-here", free.Key, "", "", nil})
	expect(401, request{"DELETE", "/v1/documents/d1", "", "", "", nil})
	expect(204, request{"DELETE", "/v1/documents/d1", free.Key, "", "", nil})
	expect(200, request{"GET", "/v1/openapi.json", "", "", "", nil})
	expect(200, request{"GET", "/v1/openapi.json", free.Key, "", "", nil})

	// Teams: a key acts as its creator. A viewer's key reads but cannot write; a
	// key made by an operator has no creator; once a downgrade suspends a member,
	// their key answers 403 plan_limit on every operation.
	ctx := context.Background()
	team := inst.NewAccount(t, plan.Enterprise)
	viewerKey := inst.Join(t, inst.NewAccount(t, plan.Free), team.WorkspaceID, "viewer")
	expect(200, request{"GET", "/v1/me", viewerKey, "", "", nil})
	expect(200, request{"GET", "/v1/documents", viewerKey, "", "", nil})
	expect(200, request{"GET", "/v1/export", viewerKey, "", "", nil})
	expect(403, request{"POST", "/v1/documents", viewerKey, js, posts["/v1/documents"], nil})
	expect(403, request{"DELETE", "/v1/documents/x", viewerKey, "", "", nil})
	operator, err := apikey.NewService(inst.Server.Pool(), inst.Config.Plans, slog.New(slog.DiscardHandler)).Create(ctx, team.WorkspaceID, nil, "ci")
	if err != nil {
		t.Fatal(err)
	}
	expect(200, request{"GET", "/v1/me", operator.Secret, "", "", nil})
	memberKey := inst.Join(t, inst.NewAccount(t, plan.Free), team.WorkspaceID, "member")
	if err := workspace.NewService(inst.Server.Pool(), inst.Config.Plans).SetPlan(ctx, team.WorkspaceID, plan.Pro, nil, "test"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []request{
		{"GET", "/v1/me", memberKey, "", "", nil}, {"GET", "/v1/usage", memberKey, "", "", nil},
		{"GET", "/v1/documents", memberKey, "", "", nil}, {"GET", "/v1/documents/x", memberKey, "", "", nil},
		{"GET", "/v1/export", memberKey, "", "", nil},
		{"DELETE", "/v1/documents/x", memberKey, "", "", nil},
		{"POST", "/v1/documents", memberKey, js, posts["/v1/documents"], nil},
		{"POST", "/v1/search", memberKey, js, posts["/v1/search"], nil},
		{"POST", "/v1/answer", memberKey, js, posts["/v1/answer"], nil},
	} {
		expect(403, r)
	}

	// A Pro key may make one request a minute here: the second call of each is refused.
	for _, r := range []request{
		{"GET", "/v1/me", pro.Key, "", "", nil}, {"GET", "/v1/usage", pro.Key, "", "", nil},
		{"GET", "/v1/documents", pro.Key, "", "", nil}, {"GET", "/v1/documents/x", pro.Key, "", "", nil},
		{"GET", "/v1/export", pro.Key, "", "", nil},
		{"DELETE", "/v1/documents/x", pro.Key, "", "", nil}, {"GET", "/v1/openapi.json", pro.Key, "", "", nil},
		{"POST", "/v1/documents", pro.Key, js, posts["/v1/documents"], nil},
		{"POST", "/v1/search", pro.Key, js, posts["/v1/search"], nil},
		{"POST", "/v1/answer", pro.Key, js, posts["/v1/answer"], nil},
	} {
		send(r)
		expect(429, r)
	}
	// Calls without a valid key share the address's daily budget.
	for range 20 {
		send(request{"GET", "/v1/openapi.json", "", "", "", nil})
	}
	expect(429, request{"GET", "/v1/openapi.json", "", "", "", nil})
	expect(429, request{"GET", "/v1/me", "ck_live_000000000000000000000000000000000000000", "", "", nil})
}
