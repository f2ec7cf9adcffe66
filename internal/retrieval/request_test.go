package retrieval

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// FuzzParseRequests feeds arbitrary bodies to every request decoder: none may
// panic, every refusal is a 4xx naming a field, and what is accepted is within the
// contract's limits. The seeds run with every `go test`.
func FuzzParseRequests(f *testing.F) {
	for _, s := range []string{
		`{"documents":[{"text":"hello","title":"t","url":"https://x","metadata":{"a":1,"b":"c","d":true}}]}`,
		`{"documents":[{"id":"x","text":"a"},{"id":"x","text":"b"}]}`,
		`{"documents":[{"text":"a","metadata":{"a":{"b":1}}}]}`,
		`{"query":"tides","top_k":5,"mode":"hybrid","filter":{"lang":"en","n":{"$in":[1,2]}}}`,
		`{"query":"a","filter":{"n":{"$gt":1}}}`,
		`{"question":"why?","stream":true,"top_k":50}`,
		`{"documents":`, `[]`, `null`, ``, `{"a":1,"a":2}`, `{"query":"\u0000"}`,
		`{"top_k":1e400,"query":"x"}`, `{"documents":[{"text":"` + strings.Repeat("é", 300) + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			e := apperr.As(err)
			if e == nil || (e.Code != apperr.Invalid && e.Code != apperr.TooLarge) || e.Field == "" {
				t.Fatalf("%q: %v is not a 4xx naming a field", body, err)
			}
		}
		docs, err := ParseUpsert(body)
		check(err)
		if err == nil {
			if len(docs) < 1 || len(docs) > MaxBatch {
				t.Fatalf("accepted %d documents", len(docs))
			}
			for _, d := range docs {
				if strings.TrimSpace(d.Text) == "" || len(d.Text) > MaxTextBytes || len(d.Metadata) > MaxMetadataKeys {
					t.Fatalf("accepted %+v", d)
				}
				if d.ID != "" && ValidateID(d.ID) != nil {
					t.Fatalf("accepted id %q", d.ID)
				}
			}
		}
		s, err := ParseSearch(body)
		check(err)
		if err == nil && (s.TopK < 1 || s.TopK > MaxTopK || s.Query == "" || (s.Mode != Hybrid && s.Mode != Semantic && s.Mode != Keyword)) {
			t.Fatalf("accepted %+v", s)
		}
		a, err := ParseAnswer(body)
		check(err)
		if err == nil && (a.TopK < 1 || a.TopK > MaxTopK || a.Question == "") {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func TestChunker(t *testing.T) {
	t.Run("ShortTextIsOneChunk", func(t *testing.T) {
		if got := DefaultChunker.Split("  Hello there.  "); len(got) != 1 || got[0] != "Hello there." {
			t.Fatalf("%q", got)
		}
	})
	t.Run("BlankTextHasNone", func(t *testing.T) {
		if got := DefaultChunker.Split(" \n\n\t "); len(got) != 0 {
			t.Fatalf("%q", got)
		}
	})
	t.Run("CutsBetweenSentencesWithOverlap", func(t *testing.T) {
		var b strings.Builder
		for i := range 40 {
			b.WriteString("Sentence number " + strings.Repeat("x", i%7) + " ends here. ")
		}
		chunks := DefaultChunker.Split(b.String())
		if len(chunks) < 2 {
			t.Fatalf("%d chunks", len(chunks))
		}
		for i, c := range chunks {
			if n := utf8.RuneCountInString(c); n > DefaultChunker.Size {
				t.Fatalf("chunk %d has %d runes", i, n)
			}
			if !strings.HasSuffix(c, "ends here.") || !strings.HasPrefix(c, "Sentence number") {
				t.Fatalf("chunk %d is cut inside a sentence: %q", i, c)
			}
			if i > 0 {
				prevLast := chunks[i-1][strings.LastIndex(chunks[i-1], "Sentence"):]
				if i := strings.Index(c, prevLast); i < 0 || i > DefaultChunker.Overlap {
					t.Fatalf("chunk %d does not overlap the previous one's last sentence %q", i, prevLast)
				}
			}
		}
	})
	t.Run("PrefersParagraphBreaks", func(t *testing.T) {
		p1 := strings.Repeat("Alpha words go here. ", 30)
		p2 := strings.Repeat("Beta words go here. ", 10)
		chunks := DefaultChunker.Split(p1 + "\n\n" + p2)
		last := chunks[len(chunks)-1]
		if !strings.HasPrefix(last, "Beta") || strings.Contains(last, "Alpha") {
			t.Fatalf("the second paragraph does not start its own chunk: %q", last)
		}
	})
	t.Run("NeverSplitsARune", func(t *testing.T) {
		text := strings.Repeat("日本語の文章", 400) // no spaces, no sentence ends
		chunks := DefaultChunker.Split(text)
		if strings.Join(chunks, "") != text {
			t.Fatal("chunks do not reassemble the text")
		}
		for _, c := range chunks {
			if !utf8.ValidString(c) || utf8.RuneCountInString(c) > DefaultChunker.Size {
				t.Fatalf("bad chunk of %d runes", utf8.RuneCountInString(c))
			}
		}
	})
	t.Run("KeepsAbbreviations", func(t *testing.T) {
		if got := sentences("Dr. Smith met J. Doe, e.g. at noon. Then left."); len(got) != 2 {
			t.Fatalf("%q", got)
		}
	})
}

func TestLocalEmbedder(t *testing.T) {
	e := NewLocalEmbedder(256)
	vs, _ := e.Embed(t.Context(), []string{"The aerodynamics of wings", "aerodynamic wing", "sourdough bread baking", ""})
	cos := func(a, b []float32) float32 { return dot(a, b) }
	if cos(vs[0], vs[1]) <= cos(vs[0], vs[2]) {
		t.Fatal("related texts are not closer than unrelated ones")
	}
	if d := cos(vs[0], vs[0]); d < 0.999 || d > 1.001 {
		t.Fatalf("not unit length: %v", d)
	}
	if !isZero(vs[3]) {
		t.Fatal("empty text has a non-zero vector")
	}
	again, _ := e.Embed(t.Context(), []string{"The aerodynamics of wings"})
	if cos(vs[0], again[0]) < 0.99999 {
		t.Fatal("not deterministic")
	}
}
