package retrieval

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHighlight(t *testing.T) {
	for _, tc := range []struct {
		name, text, query, want string
	}{
		{"Word", "Green tea steeps for two minutes.", "tea", "Green [tea] steeps for two minutes."},
		{"Inflection", "Green tea steeps for two minutes.", "how long does tea steep", "Green [tea] [steeps] for two minutes."},
		{"CaseKeptInThePassage", "TEA and Tea", "tea", "[TEA] and [Tea]"},
		{"StopwordsNeverMarked", "the tea of the day", "the tea", "the [tea] of the day"},
		{"ExclusionsNeverMarked", "tea with milk", "tea -milk", "[tea] with milk"},
		{"QuotedPhraseWords", "rate limit in redis", `"rate limit" redis`, "[rate] [limit] in [redis]"},
		{"NoMatch", "Sourdough needs a starter.", "qzxv", "Sourdough needs a starter."},
		{"NotInsideWords", "steam and instead", "tea", "steam and instead"},
		{"Unicode", "Crème brûlée au thé", "thé brûlée", "Crème [brûlée] au [thé]"},
		{"Markup is text", "<b>tea</b>", "tea", "<b>[tea]</b>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(Highlight(tc.text, tc.query, 0)); got != tc.want {
				t.Fatalf("Highlight(%q, %q) = %q, want %q", tc.text, tc.query, got, tc.want)
			}
		})
	}
}

func TestHighlightWindow(t *testing.T) {
	text := strings.Repeat("filler words here. ", 40) + "The answer is green tea, brewed cool. " + strings.Repeat("more filler after. ", 40)
	got := render(Highlight(text, "green tea", 120))
	if !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "…") {
		t.Fatalf("a window cut from both sides is not marked so: %q", got)
	}
	if !strings.Contains(got, "[green] [tea]") {
		t.Fatalf("the window misses the match: %q", got)
	}
	if n := utf8.RuneCountInString(strings.NewReplacer("[", "", "]", "").Replace(got)); n > 122 {
		t.Fatalf("window of %d runes, want about 120", n)
	}
	if strings.Contains(got, "…ller") || strings.Contains(got, "fil…") {
		t.Fatalf("a word was cut: %q", got)
	}
	if short := "tea time"; render(Highlight(short, "tea", 120)) != "[tea] time" {
		t.Fatal("a short text was cut")
	}
}

func render(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		if s.Match {
			b.WriteString("[" + s.Text + "]")
		} else {
			b.WriteString(s.Text)
		}
	}
	return b.String()
}
