package retrieval

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// Answer modes.
const (
	Generative = "generative"
	Extractive = "extractive"
)

// Answer is an answer with the sources it cites; "[n]" in Text refers to Citations[n-1].
type Answer struct {
	Text      string
	Mode      string
	Citations []Citation
}

// Citation is a source of an answer.
type Citation struct {
	DocumentID string
	Title      string
	URL        string
	Text       string
}

// noSources is the answer when nothing stored matches the question.
const noSources = "None of this workspace's documents matches the question."

// maxSourceRunes bounds each source's text in the prompt.
const maxSourceRunes = 2000

// Answer retrieves the passages that best match the question and answers from
// them: with the caller's chat model when one is available (see Service.chat),
// otherwise by extracting the best sentences. When onDelta is not nil the answer
// text is passed to it as it is produced (in one piece for extractive answers);
// anything returned before the first delta is an error the caller can still
// report as such.
func (s *Service) Answer(ctx context.Context, c Caller, in AnswerInput, onDelta func(string) error) (Answer, error) {
	if err := c.take(ctx); err != nil {
		return Answer{}, err
	}
	results, err := s.Search(ctx, c, SearchInput{Query: in.Question, TopK: in.TopK, Mode: Hybrid})
	if err != nil {
		return Answer{}, err
	}
	chat := s.chat(c)
	var a Answer
	switch {
	case len(results) == 0:
		a = Answer{Text: noSources, Mode: Extractive, Citations: []Citation{}}
		if chat != nil {
			a.Mode = Generative
		}
	case chat == nil:
		a = extract(in.Question, results)
	default:
		a = Answer{Mode: Generative, Citations: citations(results)}
		msgs := prompt(in.Question, results)
		if onDelta == nil {
			text, err := chat.Complete(ctx, msgs)
			if err != nil {
				return Answer{}, dependency(err, "language model")
			}
			a.Text = text
			return a, nil
		}
		var b strings.Builder
		err := chat.Stream(ctx, msgs, func(d string) error {
			b.WriteString(d)
			return onDelta(d)
		})
		if err != nil {
			return Answer{}, dependency(err, "language model")
		}
		a.Text = b.String()
		return a, nil
	}
	if onDelta != nil {
		if err := onDelta(a.Text); err != nil {
			return Answer{}, err
		}
	}
	return a, nil
}

func citations(rs []Result) []Citation {
	out := make([]Citation, len(rs))
	for i, r := range rs {
		out[i] = Citation{DocumentID: r.DocumentID, Title: r.Title, URL: r.URL, Text: r.Text}
	}
	return out
}

// prompt asks for an answer grounded in numbered sources.
func prompt(question string, rs []Result) []ChatMessage {
	var b strings.Builder
	b.WriteString("Answer the user's question using only the numbered sources below, which come from documents the user saved. ")
	b.WriteString("After each statement, cite the sources that support it in square brackets, like [1] or [2][3]. ")
	b.WriteString("If the sources do not answer the question, say so in one sentence. Be concise.\n\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "[%d] ", i+1)
		if r.Title != "" {
			b.WriteString(r.Title)
		}
		if r.URL != "" {
			fmt.Fprintf(&b, " (%s)", r.URL)
		}
		b.WriteString("\n")
		b.WriteString(truncateRunes(r.Text, maxSourceRunes))
		b.WriteString("\n\n")
	}
	return []ChatMessage{
		{Role: "system", Content: b.String()},
		{Role: "user", Content: question},
	}
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// extract answers with the sentences of the results that share the most (and the
// rarest) words with the question, each followed by its citation number.
func extract(question string, rs []Result) Answer {
	type sentence struct {
		text        string
		result, pos int
		terms       map[string]bool
		score       float64
	}
	qterms := map[string]bool{}
	for _, t := range terms(question) {
		qterms[t] = true
	}
	var all []sentence
	seen := map[string]bool{}
	df := map[string]int{}
	for ri, r := range rs {
		pos := 0
		for _, p := range paragraphs(r.Text) {
			for _, sn := range sentences(p) {
				if seen[sn] { // chunks overlap: the same sentence may come twice
					continue
				}
				seen[sn] = true
				ts := map[string]bool{}
				for _, t := range terms(sn) {
					ts[t] = true
				}
				for t := range ts {
					df[t]++
				}
				all = append(all, sentence{text: sn, result: ri, pos: pos, terms: ts})
				pos++
			}
		}
	}
	n := float64(len(all))
	for i := range all {
		sc := 0.0
		for t := range qterms {
			if all[i].terms[t] {
				sc += math.Log(1 + n/float64(df[t]))
			}
		}
		// Earlier results are likelier answers; very short fragments rarely are.
		sc *= 1 + 0.5/float64(all[i].result+1)
		if utf8.RuneCountInString(all[i].text) < 25 {
			sc *= 0.5
		}
		all[i].score = sc
	}
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return all[order[a]].score > all[order[b]].score })
	var picked []int
	total := 0
	for _, i := range order {
		if all[i].score <= 0 || len(picked) == 3 || total > 600 {
			break
		}
		picked = append(picked, i)
		total += utf8.RuneCountInString(all[i].text)
	}
	if len(picked) == 0 && len(all) > 0 {
		picked = []int{0} // nothing shares a word: the top passage's opening is the best guess
	}
	sort.Slice(picked, func(a, b int) bool {
		x, y := all[picked[a]], all[picked[b]]
		if x.result != y.result {
			return x.result < y.result
		}
		return x.pos < y.pos
	})
	a := Answer{Mode: Extractive, Citations: []Citation{}}
	number := map[int]int{}
	var b strings.Builder
	for _, i := range picked {
		sn := all[i]
		num, ok := number[sn.result]
		if !ok {
			r := rs[sn.result]
			a.Citations = append(a.Citations, Citation{DocumentID: r.DocumentID, Title: r.Title, URL: r.URL, Text: r.Text})
			num = len(a.Citations)
			number[sn.result] = num
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s [%d]", sn.text, num)
	}
	a.Text = b.String()
	return a
}
