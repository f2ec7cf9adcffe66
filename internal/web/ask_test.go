package web_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

const teaDocs = `{"documents":[
	{"id":"tea","title":"Green tea","url":"https://www.example.com/tea","text":"Green tea steeps for two minutes at 80 degrees. Longer makes it bitter."},
	{"id":"bread","title":"Sourdough","url":"javascript:alert(1)","text":"Sourdough needs a lively starter and a long, cool rise."}]}`

// TestSearchOnTheDocumentsPage: results show the passage with the query's words
// marked and link to their source; no score; a query that matches nothing says
// "No matches"; the page for a search's URL is the search.
func TestSearchOnTheDocumentsPage(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, teaDocs, http.StatusOK)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	t.Run("MarkedLinkedNoScores", func(t *testing.T) {
		status, page := b.Get("/dashboard/documents/search?q=" + url.QueryEscape("how long does tea steep"))
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		for _, want := range []string{
			`value="how long does tea steep"`, // the query stays in the box
			`<mark>tea</mark>`, `<mark>steeps</mark>`,
			`href="https://www.example.com/tea"`, `>example.com</p>`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the results lack %q", want)
			}
		}
		if strings.Contains(strings.ToLower(page), "score") {
			t.Error("the results show a raw score")
		}
	})
	t.Run("NeverAScriptLink", func(t *testing.T) {
		_, page := b.Get("/dashboard/documents/search?q=sourdough")
		if !strings.Contains(page, "Sourdough") || strings.Contains(page, "javascript:") {
			t.Fatalf("a stored javascript: URL became a link, or the result is missing")
		}
	})
	t.Run("NonsenseSaysNoMatches", func(t *testing.T) {
		_, page := b.Get("/dashboard/documents/search?q=qzxvqzxv+blorptangle")
		if !strings.Contains(page, `data-testid="no-matches"`) || !strings.Contains(page, "No matches") || strings.Contains(page, `class="result"`) {
			t.Fatalf("a nonsense query does not say No matches:\n%s", page)
		}
	})
}

// TestAskWithoutJavaScript posts the Ask form as a browser without JavaScript
// would: the page comes back with the answer and its sources, and the question
// counts against the monthly quota like POST /v1/answer.
func TestAskWithoutJavaScript(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "3", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "100000"})
	acct := inst.NewAccount(t, plan.Free)
	call(t, inst, "POST", "/v1/documents", acct.Key, teaDocs, http.StatusOK) // 1 of 3
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	ask := func(q string) (*http.Response, string) {
		return b.Submit("/dashboard/documents", "/dashboard/documents/ask", url.Values{"question": {q}})
	}

	t.Run("AnswerWithSources", func(t *testing.T) {
		resp, page := ask("how long does green tea steep?")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, want := range []string{`data-testid="answer-text"`, "two minutes", `data-testid="citations"`, `href="https://www.example.com/tea"`, `data-testid="answer-mode"`} {
			if !strings.Contains(page, want) {
				t.Errorf("the answer page lacks %q", want)
			}
		}
		if got := usedRequests(t, inst, acct.Key); got != 2 {
			t.Fatalf("used = %d after a stored batch and a question, want 2", got)
		}
	})
	t.Run("BadQuestionNamesTheField", func(t *testing.T) {
		resp, page := ask("tea\x00")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "question: must not contain NUL") {
			t.Fatalf("status %d:\n%.400s", resp.StatusCode, page)
		}
		if got := usedRequests(t, inst, acct.Key); got != 2 {
			t.Fatalf("a refused question was counted: used = %d", got)
		}
	})
	t.Run("QuotaRefusesAndLinksToThePlans", func(t *testing.T) {
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tea"}`, http.StatusOK) // 3 of 3
		resp, page := ask("how long does green tea steep?")
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "used its 3 billable requests") ||
			!strings.Contains(page, `href="/dashboard/billing"`) || strings.Contains(page, `data-testid="answer-text"`) {
			t.Fatalf("a question over the quota: %d\n%s", resp.StatusCode, page)
		}
		if got := usedRequests(t, inst, acct.Key); got != 3 {
			t.Fatalf("used = %d, want it to stay 3", got)
		}
	})
}

// TestAskStreamsServerSentEvents asks as the page's script does and reads the
// events: the model's answer in several deltas, then the sources, then done.
func TestAskStreamsServerSentEvents(t *testing.T) {
	ai := openaitest.Start(t, "sk-server")
	ai.Reply = func([]openaitest.Message) string { return "Green tea steeps for two minutes [1]." }
	inst := servertest.Start(t, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()})
	acct := inst.NewAccount(t, plan.Pro)
	call(t, inst, "POST", "/v1/documents", acct.Key, teaDocs, http.StatusOK)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	form := url.Values{"question": {"how long does green tea steep?"}, "_csrf": {b.CSRF("/dashboard/documents")}}
	resp := b.Send("/dashboard/documents/ask", form, http.Header{"Accept": {"text/event-stream"}})
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var names []string
	var text strings.Builder
	var cites []struct {
		N     int    `json:"n"`
		Title string `json:"title"`
		URL   string `json:"url"`
	}
	sc := bufio.NewScanner(resp.Body)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
			names = append(names, name)
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch name {
			case "delta":
				var d struct{ Text string }
				_ = json.Unmarshal(data, &d)
				text.WriteString(d.Text)
			case "citations":
				var c struct {
					Citations []struct {
						N     int    `json:"n"`
						Title string `json:"title"`
						URL   string `json:"url"`
					} `json:"citations"`
				}
				_ = json.Unmarshal(data, &c)
				cites = c.Citations
			}
		}
	}
	deltas := strings.Count(strings.Join(names, " "), "delta")
	if deltas < 3 || names[len(names)-2] != "citations" || names[len(names)-1] != "done" {
		t.Fatalf("events %v, want several deltas, then citations and done", names)
	}
	if got := text.String(); got != "Green tea steeps for two minutes [1]." {
		t.Fatalf("streamed text %q", got)
	}
	if len(cites) == 0 || cites[0].N != 1 || cites[0].Title != "Green tea" || cites[0].URL != "https://www.example.com/tea" {
		t.Fatalf("citations %+v", cites)
	}
	deadline := time.Now().Add(5 * time.Second)
	for usedRequests(t, inst, acct.Key) != 2 { // the stored batch and the question
		if time.Now().After(deadline) {
			t.Fatalf("used = %d, want 2: the streamed question is not metered", usedRequests(t, inst, acct.Key))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// usedRequests is GET /v1/usage's requests.used.
func usedRequests(t *testing.T, inst *servertest.Instance, key string) int {
	t.Helper()
	var u struct {
		Requests struct{ Used int } `json:"requests"`
	}
	resp := inst.Do(t, "GET", "/v1/usage", key, "")
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &u); err != nil {
		t.Fatal(err)
	}
	return u.Requests.Used
}
