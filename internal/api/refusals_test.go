package api_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestRefusedRequestsCostNothing: a billable request that is refused (a plan's cap,
// the quota, a malformed body) is refused before any chunking, embedding or model
// call, and is never billed; one that fails after its work began gets its unit back.
func TestRefusedRequestsCostNothing(t *testing.T) {
	// withEmbedder starts a replica whose embeddings come from a fake OpenAI, so the
	// test sees every embedding the server asks for.
	withEmbedder := func(t *testing.T, extra map[string]string) (*servertest.Instance, *openaitest.Server) {
		t.Helper()
		ai := openaitest.Start(t, "sk-server")
		vars := map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL(), "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "unlimited"}
		for k, v := range extra {
			vars[k] = v
		}
		return servertest.Start(t, vars), ai
	}
	bigBatch := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"documents":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"big-%d","text":"%s"}`, i, strings.Repeat("Words to chunk and embed at some cost. ", 20000))
		}
		b.WriteString(`]}`)
		return b.String()
	}

	t.Run("OverTheDocumentCapIsRefusedBeforeEmbedding", func(t *testing.T) {
		inst, ai := withEmbedder(t, map[string]string{"CAIRN_PLAN_FREE_DOCUMENTS": "1", "CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "10"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"only","text":"The one document the Free plan keeps here."}]}`, http.StatusOK, nil)
		before := len(ai.Requests())
		if o := do(t, inst, "POST", "/v1/documents", acct.Key, bigBatch(9)); o.status != http.StatusForbidden || o.code != "forbidden" {
			t.Fatalf("nine documents over the cap: %d %s, want 403 forbidden", o.status, o.code)
		}
		if n := len(ai.Requests()) - before; n != 0 {
			t.Fatalf("the refused batch asked for %d embedding requests, want none", n)
		}
		if u := getUsage(t, inst, acct.Key); u.Requests.Used != 1 {
			t.Fatalf("requests used = %d after one stored and one refused batch, want 1", u.Requests.Used)
		}
		// Replacing the stored document adds nothing, so the cap lets it through.
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"only","text":"Edited."}]}`, http.StatusOK, nil)
	})

	t.Run("AnExhaustedQuotaIsRefusedBeforeEmbedding", func(t *testing.T) {
		inst, ai := withEmbedder(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "1"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"anything"}`, http.StatusOK, nil)
		before := len(ai.Requests())
		for _, r := range []struct{ path, body string }{
			{"/v1/documents", bigBatch(2)},
			{"/v1/search", `{"query":"tides"}`},
			{"/v1/answer", `{"question":"why do tides turn?"}`},
		} {
			if o := do(t, inst, "POST", r.path, acct.Key, r.body); o.status != http.StatusTooManyRequests || o.code != "quota_exceeded" {
				t.Fatalf("POST %s with the quota used up: %d %s, want 429 quota_exceeded", r.path, o.status, o.code)
			}
		}
		if n := len(ai.Requests()) - before; n != 0 {
			t.Fatalf("refused requests made %d OpenAI calls, want none", n)
		}
	})

	t.Run("AMalformedRequestNeverReachesTheQuota", func(t *testing.T) {
		inst, _ := withEmbedder(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "1"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"anything"}`, http.StatusOK, nil)
		// With the quota used up, a malformed request is still told what is wrong
		// with it: it was refused on its own account, before the quota was asked.
		for _, r := range []struct{ path, body, field string }{
			{"/v1/documents", `{"documents":[{"text":""}]}`, "documents[0].text"},
			{"/v1/search", `{"query":"tides","top_k":0}`, "top_k"},
			{"/v1/answer", `{"question":""}`, "question"},
		} {
			resp := inst.Do(t, "POST", r.path, acct.Key, r.body)
			body := servertest.ReadBody(t, resp)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, r.field) {
				t.Fatalf("POST %s %s: %d %s, want 400 naming %s", r.path, r.body, resp.StatusCode, body, r.field)
			}
		}
		if u := getUsage(t, inst, acct.Key); u.Requests.Used != 1 {
			t.Fatalf("requests used = %d, want 1", u.Requests.Used)
		}
	})

	t.Run("AnAnswerWhoseModelBreaksMidStreamIsNotBilled", func(t *testing.T) {
		ai := openaitest.Start(t, "sk-server")
		ai.StreamError = "The server had an error while processing your request."
		inst := servertest.Start(t, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL(),
			"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "5", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "unlimited"})
		acct := inst.NewAccount(t, plan.Free)
		call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"text":"Green tea steeps for two minutes."}]}`, http.StatusOK, nil)
		resp, body := doWith(t, inst, "POST", "/v1/answer", acct.Key, `{"question":"how long does green tea steep?","stream":true}`,
			map[string]string{"OpenAI-API-Key": "sk-server"})
		if got := strings.Join(sseEvents(body), ","); resp.StatusCode != http.StatusOK || got != "delta,error" {
			t.Fatalf("stream: status %d, events %s, want 200 and delta,error", resp.StatusCode, got)
		}
		if u := getUsage(t, inst, acct.Key); u.Requests.Used != 1 {
			t.Fatalf("requests used = %d after a stored document and a broken answer, want 1", u.Requests.Used)
		}
	})
}

// sseEvents returns the event names of a server-sent event stream.
func sseEvents(body string) []string {
	var events []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, e)
		}
	}
	return events
}
