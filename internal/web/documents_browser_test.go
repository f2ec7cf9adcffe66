package web_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserSearchAndAsk types into the Documents page in Chromium: a nonsense
// query says "No matches" and the address bar keeps the query; a real one marks
// its words; a question's answer appears in the page piece by piece while the
// model is still writing it, then its sources.
func TestBrowserSearchAndAsk(t *testing.T) {
	ai := openaitest.Start(t, "sk-server")
	const reply = "Green tea steeps for two minutes at 80 degrees [1]."
	ai.Reply = func([]openaitest.Message) string { return reply }
	ai.Hold = make(chan struct{})
	inst := servertest.Start(t, map[string]string{"OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": ai.BaseURL()})
	acct := inst.NewAccount(t, plan.Pro)
	// Answers come from the (fake) OpenAI model; search stays on the built-in
	// embedder, with which a query of no stored word finds nothing (a semantic
	// embedder always has nearest neighbours).
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	if resp, body := b.Submit("/dashboard/settings/embedder", "/dashboard/settings/embedder", url.Values{"provider": {"builtin"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose the built-in embedder: %d %.300s", resp.StatusCode, body)
	}
	call(t, inst, "POST", "/v1/documents", acct.Key, teaDocs, http.StatusOK)
	ctx := servertest.NewChrome(t, 90*time.Second)
	pageErrors := servertest.PageErrors(t, ctx)
	servertest.LogInChrome(t, ctx, inst.URL, acct.Email, servertest.Password)
	if err := chromedp.Do(ctx, chromedp.Navigate(inst.URL+"/dashboard/documents"), chromedp.WaitVisible(chromedp.CSS(`#doc-query`))); err != nil {
		t.Fatal(err)
	}

	t.Run("NonsenseSaysNoMatches", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#doc-query`), "qzxvqzxv"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=no-matches]`)),
		); err != nil {
			t.Fatalf("no 'No matches' after typing nonsense: %v", err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=no-matches]`)))
		if err != nil || !strings.Contains(text, "No matches") {
			t.Fatalf("the empty result says %q (%v)", text, err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || !strings.Contains(loc, "/dashboard/documents/search?q=qzxvqzxv") {
			t.Fatalf("the address bar is %q (%v); it should keep the query", loc, err)
		}
		servertest.Shot(t, ctx, "documents-no-matches")
	})
	t.Run("ResultsMarkTheWords", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#doc-query').value = ''`),
			chromedp.SendKeys(chromedp.CSS(`#doc-query`), "steep tea"),
			chromedp.WaitVisible(chromedp.CSS(`#search-results mark`)),
		); err != nil {
			t.Fatalf("no marked result: %v", err)
		}
		marks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#search-results mark')].map(m => m.textContent)`))
		if err != nil || !slices.Contains(marks, "steeps") || !slices.Contains(marks, "tea") {
			t.Fatalf("marked words %v (%v)", marks, err)
		}
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#search-results .result h3 a').href`))
		if err != nil || href != "https://www.example.com/tea" {
			t.Fatalf("the result links to %q (%v)", href, err)
		}
	})
	t.Run("AnswerStreamsIntoThePage", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#ask-question`), "how long does green tea steep?"),
			chromedp.Click(chromedp.CSS(`[data-testid=ask-form] button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`#answer [data-testid=answer-text]`)),
		); err != nil {
			t.Fatalf("no answer text appeared: %v", err)
		}
		// The model has sent its first piece and is held: the page shows that much
		// and no sources yet.
		partial, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#answer [data-testid=answer-text]`)))
		if err != nil {
			t.Fatal(err)
		}
		if partial == "" || partial == reply || !strings.HasPrefix(reply, partial) {
			t.Fatalf("while the model is writing the page shows %q; want the start of %q", partial, reply)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#answer [data-testid=citations]').length`)); n != 0 {
			t.Fatal("sources shown before the answer is done")
		}
		servertest.Shot(t, ctx, "documents-answer-streaming")
		close(ai.Hold)
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#answer [data-testid=citations]`))); err != nil {
			t.Fatalf("no sources after the answer: %v", err)
		}
		full, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#answer [data-testid=answer-text]`)))
		if err != nil || full != reply {
			t.Fatalf("the finished answer reads %q (%v), want %q", full, err, reply)
		}
		source, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#answer [data-testid=citations] li a`)))
		if err != nil || source != "Green tea" {
			t.Fatalf("the first source is %q (%v)", source, err)
		}
		servertest.Shot(t, ctx, "documents-answer-done")
	})
	if errs := pageErrors(); len(errs) > 0 {
		t.Fatalf("the browser reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
