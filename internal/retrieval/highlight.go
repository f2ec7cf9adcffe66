package retrieval

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Span is a piece of a highlighted passage; Match marks a word the query asked for.
type Span struct {
	Text  string
	Match bool
}

// Highlight cuts text into spans, marking the words that match the query's content
// words the way search matches them (case, inflection: "steeps" for "steep";
// excluded -words and stopwords never), and trims it to about maxRunes around the
// first match, with "…" where it was cut. maxRunes ≤ 0 keeps the whole text.
func Highlight(text, query string, maxRunes int) []Span {
	want := map[string]bool{}
	for _, w := range strings.Fields(strings.ReplaceAll(query, `"`, " ")) {
		if isExclusion(w) {
			continue
		}
		for _, t := range terms(w) {
			want[t] = true
		}
	}
	text = window(text, want, maxRunes)
	var spans []Span
	plain := 0 // start of the text not yet in a span
	start := -1
	flush := func(end int) {
		word := text[start:end]
		if want[stem(strings.ToLower(word))] && !stopwords[strings.ToLower(word)] {
			if plain < start {
				spans = append(spans, Span{Text: text[plain:start]})
			}
			spans = append(spans, Span{Text: word, Match: true})
			plain = end
		}
		start = -1
	}
	for i, r := range text {
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			flush(i)
		}
	}
	if start >= 0 {
		flush(len(text))
	}
	if plain < len(text) {
		spans = append(spans, Span{Text: text[plain:]})
	}
	return spans
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// window returns about maxRunes of text starting a little before the first word
// in want, cut at word boundaries, with "…" marking each cut.
func window(text string, want map[string]bool, maxRunes int) string {
	if maxRunes <= 0 || utf8.RuneCountInString(text) <= maxRunes {
		return text
	}
	// Find the byte offset of the first wanted word.
	first := 0
	start := -1
	for i, r := range text + " " {
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if want[stem(strings.ToLower(text[start:i]))] {
				first = start
				break
			}
			start = -1
		}
	}
	// Begin up to a fifth of the window before it, at a word's start.
	from := first
	for n := 0; from > 0 && n < maxRunes/5; n++ {
		_, size := utf8.DecodeLastRuneInString(text[:from])
		from -= size
	}
	for from > 0 && from < len(text) {
		r, _ := utf8.DecodeRuneInString(text[from:])
		p, _ := utf8.DecodeLastRuneInString(text[:from])
		if isWordRune(r) && !isWordRune(p) {
			break
		}
		_, size := utf8.DecodeRuneInString(text[from:])
		from += size
	}
	to, n := from, 0
	for to < len(text) && n < maxRunes {
		_, size := utf8.DecodeRuneInString(text[to:])
		to += size
		n++
	}
	if to < len(text) {
		// Back to the end of the last whole word.
		for cut := to; cut > from; {
			r, size := utf8.DecodeLastRuneInString(text[:cut])
			if !isWordRune(r) {
				to = cut - size
				break
			}
			cut -= size
		}
	}
	out := strings.TrimSpace(text[from:to])
	if from > 0 {
		out = "…" + out
	}
	if to < len(text) {
		out += "…"
	}
	return out
}
