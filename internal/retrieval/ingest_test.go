package retrieval_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/retrievaltest"
)

// countingEmbedder is the local embedder that counts its calls and texts.
type countingEmbedder struct {
	retrieval.Embedder
	mu           sync.Mutex
	calls, texts int
}

func (e *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	e.mu.Lock()
	e.calls++
	e.texts += len(texts)
	e.mu.Unlock()
	return e.Embedder.Embed(ctx, texts)
}

func (e *countingEmbedder) count() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls, e.texts
}

func page(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/pages/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSavingPages stores the three test pages as HTML, as the extension sends
// them, then saves them again: unchanged pages come back "unchanged" without a
// single embedder call, and a changed one is embedded again alone.
func TestSavingPages(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	emb := &countingEmbedder{Embedder: retrieval.NewLocalEmbedder(64)}
	svc := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), Local: emb})
	c := retrievaltest.NewWorkspace(t, pool)
	ctx := context.Background()

	pages := []retrieval.DocumentInput{
		{HTML: page(t, "article.html"), URL: "https://fieldnotebook.example/2024/03/why-glaciers-are-blue/?utm_source=rss"},
		{HTML: page(t, "docs.html"), URL: "https://docs.harbor.example/cli/3.2/configuring-retries.html#the-retry-setting"},
		{HTML: page(t, "forum.html"), URL: "https://forum.breadbakers.example/t/sourdough-starter-smells-like-nail-polish-remover/48213/2", Metadata: map[string]any{"source": "forum"}},
	}
	first, err := svc.Upsert(ctx, c, pages)
	if err != nil {
		t.Fatal(err)
	}
	calls, _ := emb.count()
	if calls != 1 {
		t.Fatalf("first save: %d embedder calls, want 1 for the batch", calls)
	}
	for i, s := range first {
		if s.Status != retrieval.StatusIndexed || s.Unchanged || s.Chunks == 0 {
			t.Fatalf("first save of %d: %+v", i, s)
		}
	}
	// Ids come from the canonical URL: the forum's canonical link drops the post number.
	if want := retrieval.StableID("https://forum.breadbakers.example/t/sourdough-starter-smells-like-nail-polish-remover/48213"); first[2].ID != want {
		t.Fatalf("forum id %q, want %q (from its canonical link)", first[2].ID, want)
	}
	doc, err := svc.Get(ctx, c.WorkspaceID, first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Title != "Why Glaciers Are Blue" || doc.URL != pages[0].URL || doc.Status != retrieval.StatusIndexed {
		t.Fatalf("stored article: title %q, url %q, status %q", doc.Title, doc.URL, doc.Status)
	}
	if got := retrievaltest.DocIDs(t, svc, c, "why does glacier ice look blue", retrieval.Hybrid, nil); len(got) == 0 || got[0] != first[0].ID {
		t.Fatalf("search for the article finds %v", got)
	}

	t.Run("UnchangedIsNotEmbeddedAgain", func(t *testing.T) {
		before, _ := emb.count() // the search embedded its query
		again, err := svc.Upsert(ctx, c, pages)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range again {
			if !s.Unchanged || s.ID != first[i].ID || s.Chunks != first[i].Chunks || s.Status != retrieval.StatusIndexed {
				t.Fatalf("second save of %d: %+v, want unchanged like %+v", i, s, first[i])
			}
		}
		if calls, _ := emb.count(); calls != before {
			t.Fatalf("saving unchanged pages called the embedder %d times", calls-before)
		}
	})
	t.Run("OnlyTheChangedPageIsEmbedded", func(t *testing.T) {
		changed := pages
		changed[2].Metadata = map[string]any{"source": "forum", "starred": true}
		callsBefore, textsBefore := emb.count()
		out, err := svc.Upsert(ctx, c, changed)
		if err != nil {
			t.Fatal(err)
		}
		if !out[0].Unchanged || !out[1].Unchanged || out[2].Unchanged {
			t.Fatalf("after a metadata change: %+v", out)
		}
		calls, texts := emb.count()
		if calls-callsBefore != 1 || texts-textsBefore != out[2].Chunks {
			t.Fatalf("embedder: %d calls, %d texts for a %d-chunk change", calls-callsBefore, texts-textsBefore, out[2].Chunks)
		}
	})
}

// TestAPageWithoutReadableText is saved as failed with its reason, and never
// replaces a version that worked.
func TestAPageWithoutReadableText(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	emb := &countingEmbedder{Embedder: retrieval.NewLocalEmbedder(64)}
	svc := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), Local: emb})
	c := retrievaltest.NewWorkspace(t, pool)
	ctx := context.Background()
	const shell = `<html><head><title>Inbox</title></head><body><div id="root"></div></body></html>`

	out, err := svc.Upsert(ctx, c, []retrieval.DocumentInput{
		{HTML: shell, URL: "https://mail.example/inbox"},
		{Text: "A plain note saved alongside.", ID: "note"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Status != retrieval.StatusFailed || out[0].Reason == "" || out[0].Chunks != 0 || out[1].Status != retrieval.StatusIndexed {
		t.Fatalf("upsert = %+v", out)
	}
	failed, err := svc.Get(ctx, c.WorkspaceID, out[0].ID)
	if err != nil {
		t.Fatalf("the failed page was not recorded: %v", err)
	}
	if failed.Status != retrieval.StatusFailed || failed.Reason != out[0].Reason || failed.URL != "https://mail.example/inbox" {
		t.Fatalf("stored failed page: %+v", failed)
	}

	t.Run("AWorkingVersionIsKept", func(t *testing.T) {
		good := `<html><head><title>Field notes</title></head><body><article><p>` +
			"Moss grows on the north side of trees in the northern hemisphere, mostly because that side stays damp and shaded for longer. " +
			`</p></article></body></html>`
		first, err := svc.Upsert(ctx, c, []retrieval.DocumentInput{{HTML: good, URL: "https://notes.example/moss"}})
		if err != nil || first[0].Status != retrieval.StatusIndexed {
			t.Fatalf("good page: %+v, %v", first, err)
		}
		again, err := svc.Upsert(ctx, c, []retrieval.DocumentInput{{HTML: shell, URL: "https://notes.example/moss"}})
		if err != nil {
			t.Fatal(err)
		}
		if again[0].Status != retrieval.StatusFailed || again[0].Chunks != first[0].Chunks {
			t.Fatalf("re-save without text: %+v", again)
		}
		kept, err := svc.Get(ctx, c.WorkspaceID, first[0].ID)
		if err != nil || kept.Status != retrieval.StatusIndexed || kept.Title != "Field notes" {
			t.Fatalf("the working version was replaced: %+v, %v", kept, err)
		}
	})
	t.Run("SamePageTwiceInABatch", func(t *testing.T) {
		_, err := svc.Upsert(ctx, c, []retrieval.DocumentInput{
			{Text: "one", URL: "https://example.org/a?utm_campaign=x"},
			{Text: "two", URL: "https://EXAMPLE.org/a#top"},
		})
		if err == nil {
			t.Fatal("two documents with the same canonical URL in one batch were accepted")
		}
	})
}
