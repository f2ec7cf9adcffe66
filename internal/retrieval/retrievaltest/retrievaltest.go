// Package retrievaltest checks the retrieval service end to end over any vector
// index, against a real PostgreSQL: what one index passes, every index must.
package retrievaltest

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

// NewIndex returns the index under test for a fresh database; nil means the builtin index.
type NewIndex func(t *testing.T, pool *pgxpool.Pool) retrieval.VectorIndex

// Modes are the search modes every check runs in.
var Modes = []retrieval.Mode{retrieval.Keyword, retrieval.Semantic, retrieval.Hybrid}

// Run checks that replacing and deleting documents leaves no stale chunk in any
// search mode, that filters narrow every mode alike, and that workspaces never see
// each other's chunks, with the service writing to the index newIndex returns.
func Run(t *testing.T, newIndex NewIndex) {
	setup := func(t *testing.T) (*retrieval.Service, func() retrieval.Caller) {
		return setupWith(t, newIndex, retrieval.NewLocalEmbedder(64))
	}

	t.Run("ReplaceLeavesNoStaleChunk", func(t *testing.T) {
		svc, newCaller := setup(t)
		c := newCaller()
		Store(t, svc, c, retrieval.DocumentInput{ID: "a", Title: "Zebras", Text: "Zebra stripes confuse biting flies on the savanna."})
		Store(t, svc, c, retrieval.DocumentInput{ID: "b", Text: "Kettles boil water for tea."})
		for _, m := range Modes {
			if got := DocIDs(t, svc, c, "zebra stripes", m, nil); !contains(got, "a") {
				t.Fatalf("%s: before replacing, %v lacks a", m, got)
			}
		}
		Store(t, svc, c, retrieval.DocumentInput{ID: "a", Title: "Lattices", Text: "A crystal lattice repeats its unit cell in three dimensions."})
		for _, m := range Modes {
			for _, r := range Search(t, svc, c, "zebra stripes savanna flies", m, nil) {
				if strings.Contains(r.Text, "Zebra") || r.Title == "Zebras" {
					t.Fatalf("%s: the replaced text is still found: %+v", m, r)
				}
			}
			if got := DocIDs(t, svc, c, "crystal lattice unit cell", m, nil); len(got) == 0 || got[0] != "a" {
				t.Fatalf("%s: the new text is not found first: %v", m, got)
			}
		}
	})

	t.Run("DeleteLeavesNoStaleChunk", func(t *testing.T) {
		svc, newCaller := setup(t)
		c := newCaller()
		long := strings.Repeat("Glaciers carve valleys as they grind downhill. ", 60)
		Store(t, svc, c, retrieval.DocumentInput{ID: "ice", Text: long})
		Store(t, svc, c, retrieval.DocumentInput{ID: "other", Text: "Rivers carve valleys too, more slowly."})
		if err := svc.Delete(context.Background(), c.WorkspaceID, "ice"); err != nil {
			t.Fatal(err)
		}
		for _, m := range Modes {
			if got := DocIDs(t, svc, c, "glaciers carve valleys", m, nil); contains(got, "ice") {
				t.Fatalf("%s: the deleted document is still found: %v", m, got)
			}
		}
		n, err := svc.DocumentCount(context.Background(), c.WorkspaceID)
		if err != nil || n != 1 {
			t.Fatalf("DocumentCount = %d, %v; want 1", n, err)
		}
	})

	t.Run("FiltersNarrowEveryModeAlike", func(t *testing.T) {
		svc, newCaller := setup(t)
		c := newCaller()
		docs := []retrieval.DocumentInput{
			{ID: "en-1", Text: "Solar panels convert sunlight into electricity.", Metadata: map[string]any{"lang": "en", "stars": 5.0, "public": true}},
			{ID: "en-2", Text: "Solar farms need sunlight and land.", Metadata: map[string]any{"lang": "en", "stars": 3.0, "public": false}},
			{ID: "fr-1", Text: "Solar panels on roofs collect sunlight.", Metadata: map[string]any{"lang": "fr", "stars": 5.0}},
			{ID: "none", Text: "Solar sunlight panels without metadata."},
		}
		for _, d := range docs {
			Store(t, svc, c, d)
		}
		cases := []struct {
			name   string
			filter retrieval.Filter
			want   []string
		}{
			{"Equal", retrieval.Filter{"lang": {"en"}}, []string{"en-1", "en-2"}},
			{"In", retrieval.Filter{"lang": {"fr", "de"}}, []string{"fr-1"}},
			{"Number", retrieval.Filter{"stars": {5.0}}, []string{"en-1", "fr-1"}},
			{"Bool", retrieval.Filter{"public": {false}}, []string{"en-2"}},
			{"And", retrieval.Filter{"lang": {"en"}, "stars": {5.0}}, []string{"en-1"}},
			{"TypeMatters", retrieval.Filter{"stars": {"5"}}, nil},
			{"MissingKey", retrieval.Filter{"author": {"x"}}, nil},
		}
		for _, tc := range cases {
			for _, m := range Modes {
				got := DocIDs(t, svc, c, "solar panels sunlight", m, tc.filter)
				sort.Strings(got)
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Fatalf("%s/%s: got %v, want %v", tc.name, m, got, tc.want)
				}
			}
		}
	})

	t.Run("QuestionFindsTheDocumentItIsAbout", func(t *testing.T) {
		svc, newCaller := setupWith(t, newIndex, retrieval.NewLocalEmbedder(retrieval.DefaultLocalDim))
		c := newCaller()
		Store(t, svc, c,
			retrieval.DocumentInput{ID: "sourdough", Title: "Sourdough starter", Text: "A sourdough starter is flour and water fermented by wild yeast and lactic bacteria. Feed the starter every day."},
			retrieval.DocumentInput{ID: "satellites", Title: "Satellites", Text: "Satellites stay in orbit because they fall around the Earth; their batteries keep them alive through eclipses."},
			retrieval.DocumentInput{ID: "taxes", Title: "Filing taxes", Text: "Tax returns are due in April; keep receipts for deductions."},
		)
		for _, m := range Modes {
			if got := DocIDs(t, svc, c, "how do I keep my yeast starter alive", m, nil); len(got) == 0 || got[0] != "sourdough" {
				t.Fatalf("%s: got %v, want the sourdough document first", m, got)
			}
		}
	})

	t.Run("NothingMatchesFindsNothing", func(t *testing.T) {
		svc, newCaller := setupWith(t, newIndex, retrieval.NewLocalEmbedder(retrieval.DefaultLocalDim))
		c := newCaller()
		Store(t, svc, c,
			retrieval.DocumentInput{ID: "sourdough", Text: "A sourdough starter is flour and water fermented by wild yeast."},
			retrieval.DocumentInput{ID: "satellites", Text: "Satellites stay in orbit because they fall around the Earth."},
		)
		for _, q := range []string{"xqzvv plonk", "the of and", `"flour water" -yeast`} {
			for _, m := range Modes {
				if got := Search(t, svc, c, q, m, nil); len(got) != 0 {
					t.Fatalf("%s: %q found %d results, want none: %+v", m, q, len(got), got)
				}
			}
		}
	})

	t.Run("QuotesInASentenceOnlyQuote", func(t *testing.T) {
		svc, newCaller := setup(t)
		c := newCaller()
		Store(t, svc, c,
			retrieval.DocumentInput{ID: "wysiwyg", Text: "Text formatting systems show the page as it will print while you edit it."},
			retrieval.DocumentInput{ID: "other", Text: "Compilers translate programs into machine code."},
		)
		for _, m := range Modes {
			q := `articles on text formatting systems, including "what you see is what you get" systems`
			if got := DocIDs(t, svc, c, q, m, nil); len(got) == 0 || got[0] != "wysiwyg" {
				t.Fatalf("%s: got %v, want the formatting document first", m, got)
			}
		}
		// In a short query a phrase is still a requirement.
		if got := DocIDs(t, svc, c, `"machine code" formatting`, retrieval.Keyword, nil); strings.Join(got, ",") != "other" {
			t.Fatalf(`"machine code" formatting: got %v, want only the compilers document`, got)
		}
	})

	t.Run("WorkspacesNeverMeet", func(t *testing.T) {
		svc, newCaller := setup(t)
		mine, theirs := newCaller(), newCaller()
		Store(t, svc, theirs, retrieval.DocumentInput{ID: "secret", Text: "The launch code is hidden under the doormat."})
		Store(t, svc, mine, retrieval.DocumentInput{ID: "mine", Text: "My shopping list: bread and milk."})
		for _, m := range Modes {
			if got := DocIDs(t, svc, mine, "launch code doormat", m, nil); contains(got, "secret") {
				t.Fatalf("%s: another workspace's document was found: %v", m, got)
			}
		}
	})
}

// setupWith returns a service over a fresh database, writing to the index
// newIndex returns and embedding with local, and a maker of workspaces.
func setupWith(t *testing.T, newIndex NewIndex, local retrieval.Embedder) (*retrieval.Service, func() retrieval.Caller) {
	pool, _ := dbtest.NewPool(t)
	var idx retrieval.VectorIndex
	if newIndex != nil {
		idx = newIndex(t, pool)
	}
	svc := retrieval.NewService(retrieval.Options{Pool: pool, Plans: plan.Default(), Local: local, Index: idx})
	return svc, func() retrieval.Caller { return NewWorkspace(t, pool) }
}

// NewWorkspace creates a Pro workspace and returns a caller acting for it.
func NewWorkspace(t *testing.T, pool *pgxpool.Pool) retrieval.Caller {
	t.Helper()
	ws, err := dbq.New(pool).WorkspaceCreate(context.Background(), "test "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	return retrieval.Caller{WorkspaceID: ws.ID, Plan: plan.Pro}
}

// Store upserts documents or fails the test.
func Store(t *testing.T, svc *retrieval.Service, c retrieval.Caller, docs ...retrieval.DocumentInput) {
	t.Helper()
	if _, err := svc.Upsert(context.Background(), c, docs); err != nil {
		t.Fatalf("upsert: %v", err)
	}
}

// Search runs a search for up to 50 results or fails the test.
func Search(t *testing.T, svc *retrieval.Service, c retrieval.Caller, q string, m retrieval.Mode, f retrieval.Filter) []retrieval.Result {
	t.Helper()
	rs, err := svc.Search(context.Background(), c, retrieval.SearchInput{Query: q, TopK: 50, Mode: m, Filter: f})
	if err != nil {
		t.Fatalf("search %q (%s): %v", q, m, err)
	}
	return rs
}

// DocIDs is Search's document ids, each once, best first.
func DocIDs(t *testing.T, svc *retrieval.Service, c retrieval.Caller, q string, m retrieval.Mode, f retrieval.Filter) []string {
	t.Helper()
	var ids []string
	for _, r := range Search(t, svc, c, q, m, f) {
		if !contains(ids, r.DocumentID) {
			ids = append(ids, r.DocumentID)
		}
	}
	return ids
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
