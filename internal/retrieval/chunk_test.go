package retrieval

import (
	"strings"
	"testing"
	"unicode/utf8"
)

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
