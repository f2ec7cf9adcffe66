package retrieval

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chunker splits a document's text into passages of about Size characters (runes)
// for indexing. It breaks between paragraphs when it can, otherwise between
// sentences, otherwise between words, and only as a last resort between two runes;
// it never splits a rune. A chunk cut inside a paragraph starts with up to Overlap
// characters of whole sentences from the end of the previous chunk, so a passage
// that straddles the cut is still found whole in one of them.
type Chunker struct {
	Size    int
	Overlap int
}

// DefaultChunker is the chunker documents are stored with.
var DefaultChunker = Chunker{Size: 800, Overlap: 160}

// unit is a sentence (or a piece of an over-long one) with its length in runes.
type unit struct {
	text string
	n    int
	para bool // the first unit of a paragraph
}

// Split returns the chunks of text in order; text with no visible characters has none.
func (c Chunker) Split(text string) []string {
	var units []unit
	for _, p := range paragraphs(text) {
		first := true
		for _, s := range sentences(p) {
			for _, piece := range splitLong(s, c.Size) {
				units = append(units, unit{text: piece, n: utf8.RuneCountInString(piece), para: first})
				first = false
			}
		}
	}
	var (
		chunks []string
		cur    []unit
		curLen int
		fresh  bool // cur holds something not already in the previous chunk
	)
	length := func(us []unit) int {
		n := 0
		for i, u := range us {
			if i > 0 {
				n++ // the separator
			}
			n += u.n
		}
		return n
	}
	flush := func(overlap bool) {
		chunks = append(chunks, joinUnits(cur))
		var tail []unit
		if overlap {
			n := 0
			// Never carry the whole chunk over: the next one must move forward.
			for i := len(cur) - 1; i > 0; i-- {
				if n+cur[i].n+1 > c.Overlap {
					break
				}
				n += cur[i].n + 1
				tail = append([]unit{cur[i]}, tail...)
			}
		}
		cur, curLen, fresh = tail, length(tail), false
	}
	for _, u := range units {
		if fresh && u.para && curLen >= c.Size*3/5 {
			flush(false) // a paragraph break is the best place to cut
		}
		if len(cur) > 0 && curLen+1+u.n > c.Size {
			if fresh {
				flush(!u.para)
			}
			for len(cur) > 0 && curLen+1+u.n > c.Size { // overlap that does not fit goes
				cur = cur[1:]
				curLen = length(cur)
			}
		}
		cur = append(cur, u)
		curLen = length(cur)
		fresh = true
	}
	if fresh {
		chunks = append(chunks, joinUnits(cur))
	}
	return chunks
}

// joinUnits joins sentences with a space and paragraphs with a blank line.
func joinUnits(us []unit) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			if u.para {
				b.WriteString("\n\n")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(u.text)
	}
	return b.String()
}

// paragraphs splits text at blank lines and trims each paragraph.
func paragraphs(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	var out []string
	var b strings.Builder
	emit := func() {
		if p := strings.TrimSpace(b.String()); p != "" {
			out = append(out, p)
		}
		b.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			emit()
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	emit()
	return out
}

// abbreviations end with a period without ending a sentence.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "dr": true, "prof": true, "st": true, "vs": true,
	"e.g": true, "i.e": true, "cf": true, "fig": true, "no": true, "vol": true, "approx": true,
	"inc": true, "ltd": true, "jr": true, "sr": true, "eq": true, "ref": true,
}

// sentences splits a paragraph after sentence-ending punctuation followed by space,
// and at line breaks (pages often put one block per line). Whitespace inside a
// sentence is collapsed to single spaces.
func sentences(p string) []string {
	var out []string
	var b strings.Builder
	emit := func() {
		if s := strings.TrimSpace(b.String()); s != "" {
			out = append(out, s)
		}
		b.Reset()
	}
	rs := []rune(p)
	space := false
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '\n' {
			emit()
			space = false
			continue
		}
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
		if isTerminator(r) {
			// Take closing quotes and brackets with the sentence.
			for i+1 < len(rs) && strings.ContainsRune(`"'”’)]»`, rs[i+1]) {
				i++
				b.WriteRune(rs[i])
			}
			atEnd := i+1 >= len(rs)
			if r == '。' || r == '！' || r == '？' || atEnd || unicode.IsSpace(rs[i+1]) {
				if r == '.' && isAbbreviation(b.String()) {
					continue
				}
				emit()
			}
		}
	}
	emit()
	return out
}

func isTerminator(r rune) bool {
	switch r {
	case '.', '!', '?', '…', '。', '！', '？':
		return true
	}
	return false
}

// isAbbreviation reports whether s ends with an abbreviation or an initial ("J.").
func isAbbreviation(s string) bool {
	s = strings.TrimSuffix(s, ".")
	i := strings.LastIndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '(' })
	w := s[i+1:]
	if utf8.RuneCountInString(w) == 1 {
		r, _ := utf8.DecodeRuneInString(w)
		return unicode.IsLetter(r)
	}
	return abbreviations[strings.ToLower(w)]
}

// splitLong cuts a sentence longer than size runes at the last space before the
// limit, or at the limit itself when there is no space in its second half.
func splitLong(s string, size int) []string {
	var out []string
	for utf8.RuneCountInString(s) > size {
		cut, lastSpace, n := 0, -1, 0
		for i, r := range s {
			if n == size {
				cut = i
				break
			}
			if r == ' ' && n >= size/2 {
				lastSpace = i
			}
			n++
		}
		if lastSpace > 0 {
			cut = lastSpace
		}
		out = append(out, strings.TrimSpace(s[:cut]))
		s = strings.TrimSpace(s[cut:])
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
