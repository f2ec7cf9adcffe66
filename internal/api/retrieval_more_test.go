package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// roomy lifts rate limits and quotas so retrieval tests measure retrieval.
var roomy = map[string]string{
	"CAIRN_PLAN_FREE_RATE_PER_MINUTE":    "100000",
	"CAIRN_PLAN_PRO_RATE_PER_MINUTE":     "100000",
	"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "unlimited",
}

// env returns roomy with extra's variables added, later maps winning.
func env(extra ...map[string]string) map[string]string {
	out := maps.Clone(roomy)
	for _, m := range extra {
		maps.Copy(out, m)
	}
	return out
}

type docList struct {
	Documents []struct {
		ID       string         `json:"id"`
		Title    string         `json:"title"`
		Chunks   int            `json:"chunks"`
		Text     *string        `json:"text"`
		Metadata map[string]any `json:"metadata"`
	} `json:"documents"`
	NextCursor *string `json:"next_cursor"`
}

type answerJSON struct {
	Answer    string `json:"answer"`
	Mode      string `json:"mode"`
	Citations []struct {
		DocumentID string `json:"document_id"`
		Text       string `json:"text"`
	} `json:"citations"`
}

func TestAnotherWorkspaceSeesNothing(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	owner, other := inst.NewAccount(t, plan.Pro), inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", owner.Key, `{"documents":[{"id":"plans","title":"Plans","text":"The secret rocket plans are in the blue folder."}]}`, 200, nil)

	t.Run("GetIs404", func(t *testing.T) {
		call(t, inst, "GET", "/v1/documents/plans", other.Key, "", 404, nil)
	})
	t.Run("DeleteIs404AndDeletesNothing", func(t *testing.T) {
		call(t, inst, "DELETE", "/v1/documents/plans", other.Key, "", 404, nil)
		call(t, inst, "GET", "/v1/documents/plans", owner.Key, "", 200, nil)
	})
	t.Run("ListShowsNothing", func(t *testing.T) {
		var l docList
		call(t, inst, "GET", "/v1/documents", other.Key, "", 200, &l)
		if len(l.Documents) != 0 {
			t.Fatalf("other workspace lists %+v", l.Documents)
		}
	})
	t.Run("SearchFindsNothing", func(t *testing.T) {
		for _, m := range []string{"keyword", "semantic", "hybrid"} {
			var res searchResults
			call(t, inst, "POST", "/v1/search", other.Key, `{"query":"secret rocket plans blue folder","mode":"`+m+`"}`, 200, &res)
			if len(res.Results) != 0 {
				t.Fatalf("%s: other workspace found %+v", m, res.Results)
			}
		}
	})
	t.Run("AnswerCitesNothing", func(t *testing.T) {
		var a answerJSON
		call(t, inst, "POST", "/v1/answer", other.Key, `{"question":"where are the secret rocket plans?"}`, 200, &a)
		if len(a.Citations) != 0 || strings.Contains(a.Answer, "blue folder") {
			t.Fatalf("other workspace got %+v", a)
		}
	})
	t.Run("UpsertSameIDDoesNotTouchTheOwners", func(t *testing.T) {
		call(t, inst, "POST", "/v1/documents", other.Key, `{"documents":[{"id":"plans","text":"Overwritten?"}]}`, 200, nil)
		var d struct{ Text string }
		call(t, inst, "GET", "/v1/documents/plans", owner.Key, "", 200, &d)
		if !strings.Contains(d.Text, "blue folder") {
			t.Fatalf("owner's document changed: %q", d.Text)
		}
	})
}

func TestTwoReplicasShareDocumentsAtOnce(t *testing.T) {
	a := servertest.Start(t, env(nil))
	b := servertest.StartOn(t, a.DatabaseURL, env(nil))
	acct := a.NewAccount(t, plan.Pro)
	// b caches the workspace's vectors first, so the write below must reach a warm cache.
	call(t, b, "POST", "/v1/search", acct.Key, `{"query":"anything","mode":"semantic"}`, 200, nil)
	call(t, a, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"comet","text":"Halley's comet returns every 76 years."}]}`, 200, nil)
	for _, m := range []string{"keyword", "semantic", "hybrid"} {
		var res searchResults
		call(t, b, "POST", "/v1/search", acct.Key, `{"query":"comet returns years","mode":"`+m+`"}`, 200, &res)
		if len(res.Results) == 0 || res.Results[0].DocumentID != "comet" {
			t.Fatalf("%s on the other replica: %+v", m, res.Results)
		}
	}
	call(t, b, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"comet","text":"Meteor showers follow comet debris."}]}`, 200, nil)
	call(t, b, "DELETE", "/v1/documents/comet", acct.Key, "", 204, nil)
	for _, m := range []string{"keyword", "semantic", "hybrid"} {
		var res searchResults
		call(t, a, "POST", "/v1/search", acct.Key, `{"query":"comet meteor years","mode":"`+m+`"}`, 200, &res)
		if len(res.Results) != 0 {
			t.Fatalf("%s: deleted on one replica, still found on the other: %+v", m, res.Results)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)
	long := strings.Repeat("x", 257)
	meta41 := "{"
	for i := range 41 {
		meta41 += fmt.Sprintf(`"k%d":1,`, i)
	}
	meta41 = strings.TrimSuffix(meta41, ",") + "}"
	many := `{"documents":[` + strings.TrimSuffix(strings.Repeat(`{"text":"x"},`, 101), ",") + `]}`
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"NotJSON", "POST", "/v1/documents", `{"documents":`, 400, "body"},
		{"ArrayBody", "POST", "/v1/documents", `[]`, 400, "body"},
		{"TrailingData", "POST", "/v1/documents", `{"documents":[{"text":"a"}]} x`, 400, "body"},
		{"NoDocuments", "POST", "/v1/documents", `{}`, 400, "documents"},
		{"DocumentsNotArray", "POST", "/v1/documents", `{"documents":{}}`, 400, "documents"},
		{"EmptyBatch", "POST", "/v1/documents", `{"documents":[]}`, 400, "documents"},
		{"TooManyDocuments", "POST", "/v1/documents", many, 413, "documents"},
		{"DocumentNotObject", "POST", "/v1/documents", `{"documents":["text"]}`, 400, "documents[0]"},
		{"MissingText", "POST", "/v1/documents", `{"documents":[{"title":"t"}]}`, 400, "documents[0].text"},
		{"TextNotString", "POST", "/v1/documents", `{"documents":[{"text":5}]}`, 400, "documents[0].text"},
		{"BlankText", "POST", "/v1/documents", `{"documents":[{"text":"  \n "}]}`, 400, "documents[0].text"},
		{"TextOver1MiB", "POST", "/v1/documents", `{"documents":[{"text":"` + strings.Repeat("a", 1<<20+1) + `"}]}`, 413, "documents[0].text"},
		{"EmptyID", "POST", "/v1/documents", `{"documents":[{"id":"","text":"a"}]}`, 400, "documents[0].id"},
		{"LongID", "POST", "/v1/documents", `{"documents":[{"id":"` + long + `","text":"a"}]}`, 400, "documents[0].id"},
		{"UnprintableID", "POST", "/v1/documents", `{"documents":[{"id":"a\tb","text":"a"}]}`, 400, "documents[0].id"},
		{"IDNotString", "POST", "/v1/documents", `{"documents":[{"id":7,"text":"a"}]}`, 400, "documents[0].id"},
		{"DuplicateID", "POST", "/v1/documents", `{"documents":[{"id":"a","text":"a"},{"id":"a","text":"b"}]}`, 400, "documents[1].id"},
		{"NulInText", "POST", "/v1/documents", `{"documents":[{"text":"a\u0000b"}]}`, 400, "documents[0].text"},
		{"NulInTitle", "POST", "/v1/documents", `{"documents":[{"text":"a","title":"a\u0000"}]}`, 400, "documents[0].title"},
		{"NulInURL", "POST", "/v1/documents", `{"documents":[{"text":"a","url":"http://a\u0000"}]}`, 400, "documents[0].url"},
		{"NulInMetadataValue", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"k":"\u0000"}}]}`, 400, "documents[0].metadata.k"},
		{"NulInMetadataKey", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"k\u0000":"v"}}]}`, 400, "documents[0].metadata"},
		{"NulInID", "POST", "/v1/documents", `{"documents":[{"id":"a\u0000","text":"a"}]}`, 400, "documents[0].id"},
		{"MetadataNumberOutOfRange", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"k":1e400}}]}`, 400, "documents[0].metadata.k"},
		{"DeeplyNested", "POST", "/v1/documents", strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), 400, "body"},
		{"TitleNotString", "POST", "/v1/documents", `{"documents":[{"text":"a","title":[]}]}`, 400, "documents[0].title"},
		{"URLWithNewline", "POST", "/v1/documents", `{"documents":[{"text":"a","url":"http://x\n"}]}`, 400, "documents[0].url"},
		{"MetadataNotObject", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":[1]}]}`, 400, "documents[0].metadata"},
		{"MetadataNested", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"a":{"b":1}}}]}`, 400, "documents[0].metadata.a"},
		{"MetadataNull", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"a":null}}]}`, 400, "documents[0].metadata.a"},
		{"MetadataTooManyKeys", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":` + meta41 + `}]}`, 400, "documents[0].metadata"},
		{"MetadataTooBig", "POST", "/v1/documents", `{"documents":[{"text":"a","metadata":{"a":"` + strings.Repeat("m", 9000) + `"}}]}`, 400, "documents[0].metadata"},
		{"UnknownDocumentField", "POST", "/v1/documents", `{"documents":[{"text":"a","body":"b"}]}`, 400, "documents[0].body"},
		{"DuplicateKey", "POST", "/v1/documents", `{"documents":[{"text":"a","text":"b"}]}`, 400, "documents[0]"},
		{"MissingQuery", "POST", "/v1/search", `{}`, 400, "query"},
		{"BlankQuery", "POST", "/v1/search", `{"query":"   "}`, 400, "query"},
		{"QueryNotString", "POST", "/v1/search", `{"query":["a"]}`, 400, "query"},
		{"TopKZero", "POST", "/v1/search", `{"query":"a","top_k":0}`, 400, "top_k"},
		{"TopKTooBig", "POST", "/v1/search", `{"query":"a","top_k":51}`, 400, "top_k"},
		{"TopKFraction", "POST", "/v1/search", `{"query":"a","top_k":2.5}`, 400, "top_k"},
		{"TopKString", "POST", "/v1/search", `{"query":"a","top_k":"5"}`, 400, "top_k"},
		{"UnknownMode", "POST", "/v1/search", `{"query":"a","mode":"fuzzy"}`, 400, "mode"},
		{"FilterNotObject", "POST", "/v1/search", `{"query":"a","filter":"lang=en"}`, 400, "filter"},
		{"FilterUnknownOperator", "POST", "/v1/search", `{"query":"a","filter":{"n":{"$gt":1}}}`, 400, "filter.n"},
		{"FilterEmptyIn", "POST", "/v1/search", `{"query":"a","filter":{"n":{"$in":[]}}}`, 400, "filter.n.$in"},
		{"FilterInNested", "POST", "/v1/search", `{"query":"a","filter":{"n":{"$in":[[1]]}}}`, 400, "filter.n.$in[0]"},
		{"FilterArrayValue", "POST", "/v1/search", `{"query":"a","filter":{"n":[1,2]}}`, 400, "filter.n"},
		{"UnknownSearchField", "POST", "/v1/search", `{"query":"a","topk":3}`, 400, "topk"},
		{"NulInQuery", "POST", "/v1/search", `{"query":"a\u0000b","mode":"keyword"}`, 400, "query"},
		{"QueryTooLong", "POST", "/v1/search", `{"query":"` + strings.Repeat("w ", 2001) + `"}`, 400, "query"},
		{"TopKOutOfRange", "POST", "/v1/search", `{"query":"a","top_k":1e400}`, 400, "top_k"},
		{"NulInFilterValue", "POST", "/v1/search", `{"query":"a","filter":{"k":{"$in":["\u0000"]}}}`, 400, "filter.k.$in[0]"},
		{"NulInQuestion", "POST", "/v1/answer", `{"question":"\u0000","stream":true}`, 400, "question"},
		{"MissingQuestion", "POST", "/v1/answer", `{"query":"a"}`, 400, "question"},
		{"StreamNotBool", "POST", "/v1/answer", `{"question":"a","stream":"yes"}`, 400, "stream"},
		{"AnswerTopK", "POST", "/v1/answer", `{"question":"a","top_k":-1}`, 400, "top_k"},
		{"ListLimitZero", "GET", "/v1/documents?limit=0", "", 400, "limit"},
		{"ListLimitText", "GET", "/v1/documents?limit=ten", "", 400, "limit"},
		{"ListBadCursor", "GET", "/v1/documents?cursor=%21%21", "", 400, "cursor"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := inst.Do(t, tc.method, tc.path, acct.Key, tc.body)
			body := servertest.ReadBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(body, tc.field) {
				t.Fatalf("the message does not name %q: %s", tc.field, body)
			}
		})
	}
	var l docList
	call(t, inst, "GET", "/v1/documents", acct.Key, "", 200, &l)
	if len(l.Documents) != 0 {
		t.Fatalf("malformed requests stored %d documents", len(l.Documents))
	}
}

func TestDocumentCapNamesTheBiggerPlan(t *testing.T) {
	inst := servertest.Start(t, env(map[string]string{"CAIRN_PLAN_FREE_DOCUMENTS": "2"}))
	acct := inst.NewAccount(t, plan.Free)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"1","text":"one"},{"id":"2","text":"two"}]}`, 200, nil)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"2","text":"two again: replacing is not adding"}]}`, 200, nil)
	resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"3","text":"three"}]}`)
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != 403 || !strings.Contains(body, "Pro") {
		t.Fatalf("over the cap: %d %s; want 403 naming Pro", resp.StatusCode, body)
	}
}

func TestOverTheCapAfterDowngradeCanStillReplace(t *testing.T) {
	inst := servertest.Start(t, env(map[string]string{"CAIRN_PLAN_FREE_DOCUMENTS": "2"}))
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"1","text":"one"},{"id":"2","text":"two"},{"id":"3","text":"three"}]}`, 200, nil)
	if err := workspace.NewService(inst.Server.Pool(), inst.Config.Plans).SetPlan(context.Background(), acct.WorkspaceID, plan.Free, nil, "test"); err != nil {
		t.Fatal(err)
	}
	waitForPlan(t, inst, acct.Key, "free")
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"3","text":"three, edited after the downgrade"}]}`, 200, nil)
	resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"4","text":"four"}]}`)
	if body := servertest.ReadBody(t, resp); resp.StatusCode != 403 {
		t.Fatalf("a new document over the cap: %d %s; want 403", resp.StatusCode, body)
	}
	var l docList
	call(t, inst, "GET", "/v1/documents", acct.Key, "", 200, &l)
	if len(l.Documents) != 3 {
		t.Fatalf("the downgrade kept %d documents, want all 3", len(l.Documents))
	}
}

// waitForPlan polls /v1/me until the key's cached workspace shows plan.
func waitForPlan(t *testing.T, inst *servertest.Instance, key, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var me struct {
			Workspace struct{ Plan string } `json:"workspace"`
		}
		call(t, inst, "GET", "/v1/me", key, "", 200, &me)
		if me.Workspace.Plan == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plan is still %q, want %q", me.Workspace.Plan, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenAIOutageIs503AndStoresNothing(t *testing.T) {
	ai := openaitest.Start(t, "sk-server")
	inst := servertest.Start(t, env(map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()}))
	acct := inst.NewAccount(t, plan.Pro)
	for range 10 { // more than any retry policy tries
		ai.Fail(openaitest.Failure{Status: 500})
	}
	resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"x","text":"Anything at all."}]}`)
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	call(t, inst, "GET", "/v1/documents/x", acct.Key, "", 404, nil)
}

func TestAnswers(t *testing.T) {
	ai := openaitest.Start(t, "sk-server", "sk-mine")
	inst := servertest.Start(t, env(map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()}))
	free, pro := inst.NewAccount(t, plan.Free), inst.NewAccount(t, plan.Pro)
	doc := `{"documents":[{"id":"tea","title":"Tea","url":"https://example.com/tea","text":"Green tea should steep for two minutes in water at 80 degrees. Longer makes it bitter."}]}`
	call(t, inst, "POST", "/v1/documents", free.Key, doc, 200, nil)
	call(t, inst, "POST", "/v1/documents", pro.Key, doc, 200, nil)

	t.Run("FreePlanWithoutItsOwnKeyIsExtractive", func(t *testing.T) {
		var a answerJSON
		call(t, inst, "POST", "/v1/answer", free.Key, `{"question":"how long should green tea steep?"}`, 200, &a)
		if a.Mode != "extractive" || !strings.Contains(a.Answer, "two minutes") || !strings.Contains(a.Answer, "[1]") ||
			len(a.Citations) != 1 || a.Citations[0].DocumentID != "tea" {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("ProPlanUsesTheServerKey", func(t *testing.T) {
		var a answerJSON
		call(t, inst, "POST", "/v1/answer", pro.Key, `{"question":"how long should green tea steep?"}`, 200, &a)
		if a.Mode != "generative" || !strings.Contains(a.Answer, "[1]") || len(a.Citations) == 0 {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("OwnKeyStreams", func(t *testing.T) {
		req, _ := http.NewRequest("POST", inst.URL+"/v1/answer", strings.NewReader(`{"question":"green tea steeping time","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+free.Key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("OpenAI-API-Key", "sk-mine")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
		}
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				events = append(events, e)
			}
		}
		got := strings.Join(events, ",")
		if !strings.HasPrefix(got, "delta") || !strings.HasSuffix(got, "delta,citations,done") {
			t.Fatalf("events %s", got)
		}
		last := ai.Requests()[len(ai.Requests())-1]
		if last.Authorization != "Bearer sk-mine" || !last.Stream {
			t.Fatalf("the chat call used %q (stream %v), want the caller's key", last.Authorization, last.Stream)
		}
	})
}

func TestListPagesAndOddIDs(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)
	ids := []string{"a/b c?d", "é#1", "plain", "100%", "x"}
	var docs []string
	for _, id := range ids {
		docs = append(docs, fmt.Sprintf(`{"id":%q,"text":"text of %s"}`, id, id))
	}
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[`+strings.Join(docs, ",")+`]}`, 200, nil)
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < 10; page++ {
		var l docList
		call(t, inst, "GET", "/v1/documents?limit=2&cursor="+url.QueryEscape(cursor), acct.Key, "", 200, &l)
		for _, d := range l.Documents {
			if seen[d.ID] {
				t.Fatalf("%q listed twice", d.ID)
			}
			seen[d.ID] = true
		}
		if l.NextCursor == nil {
			break
		}
		cursor = *l.NextCursor
	}
	if len(seen) != len(ids) {
		t.Fatalf("listed %v, want %v", seen, ids)
	}
	for _, id := range ids {
		var d struct{ ID, Text string }
		call(t, inst, "GET", "/v1/documents/"+url.PathEscape(id), acct.Key, "", 200, &d)
		if d.ID != id || d.Text != "text of "+id {
			t.Fatalf("GET %q: %+v", id, d)
		}
	}
	call(t, inst, "DELETE", "/v1/documents/"+url.PathEscape("a/b c?d"), acct.Key, "", 204, nil)
	call(t, inst, "GET", "/v1/documents/"+url.PathEscape("a/b c?d"), acct.Key, "", 404, nil)
}

func TestOddQueriesNeverFail(t *testing.T) {
	inst := servertest.Start(t, env(nil))
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"o","title":"O'Brien's notes","text":"C:\\path\\to it's a 'quoted' word & more: x|y !z <-> (a) * ü 東京"}]}`, 200, nil)
	for _, q := range []string{
		`it's`, `O'Brien`, `C:\\path\\to`, `'quoted'`, `a & b | !c`, `"unclosed phrase`, `"" -`, `- -- ---x`,
		`(a) <-> b:*`, `東京`, `ü`, `*`, `\\'\\'`, `"O'Brien's notes" -missing`, `or and not`,
	} {
		for _, m := range []string{"keyword", "semantic", "hybrid"} {
			body, _ := json.Marshal(map[string]string{"query": q, "mode": m})
			call(t, inst, "POST", "/v1/search", acct.Key, string(body), 200, nil)
		}
	}
	var res searchResults
	call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"O'Brien notes","mode":"keyword"}`, 200, &res)
	if len(res.Results) != 1 {
		t.Fatalf("apostrophes: %+v", res.Results)
	}
}

// TestInputPostgreSQLWouldRefuseIsA400 covers inputs that reached PostgreSQL and
// came back as 500s: a filter key holding NUL (22P05) and a forged list cursor whose
// time is out of PostgreSQL's range (22008).
func TestInputPostgreSQLWouldRefuseIsA400(t *testing.T) {
	inst := servertest.Start(t, env())
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, `{"documents":[{"text":"Tides turn twice a day.","metadata":{"lang":"en"}}]}`, 200, nil)
	for _, tc := range []struct{ name, method, path, body, field string }{
		{"NULInFilterKeyKeyword", "POST", "/v1/search", `{"query":"tides","mode":"keyword","filter":{"la\u0000ng":"en"}}`, "filter"},
		{"NULInFilterKeyHybrid", "POST", "/v1/search", `{"query":"tides","filter":{"\u0000":{"$in":["en"]}}}`, "filter"},
		{"NULInFilterKeySemantic", "POST", "/v1/search", `{"query":"tides","mode":"semantic","filter":{"a\u0000":"en"}}`, "filter"},
		{"CursorFarInTheFuture", "GET", "/v1/documents?cursor=__________9_eno", "", "cursor"},
		{"CursorFarInThePast", "GET", "/v1/documents?cursor=" + farCursor(-1<<62), "", "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := inst.Do(t, tc.method, tc.path, acct.Key, tc.body)
			var e apiError
			if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &e); err != nil || resp.StatusCode != 400 ||
				e.Error.Code != "invalid_request" || !strings.HasPrefix(e.Error.Message, tc.field) {
				t.Fatalf("status %d, error %+v; want 400 naming %s", resp.StatusCode, e.Error, tc.field)
			}
		})
	}
}

// farCursor forges a list cursor holding the given microseconds since 1970.
func farCursor(us int64) string {
	return base64.RawURLEncoding.EncodeToString(append(binary.AppendVarint(nil, us), "doc"...))
}
