package main

import (
	"math"
	"sort"
	"strings"
	"unicode"
)

// baselineStopwords is the 33-word English stoplist of Lucene's StandardAnalyzer,
// the usual companion of a "plain BM25" figure.
var baselineStopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by for if in into is it no not of on or
		such that the their then there these they this to was will with`) {
		m[w] = true
	}
	return m
}()

// baselineTokens lower-cases s and splits it into runs of letters and digits,
// without the stoplist's words and without stemming.
func baselineTokens(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	out := f[:0]
	for _, w := range f {
		if !baselineStopwords[w] {
			out = append(out, w)
		}
	}
	return out
}

// bm25 is the textbook baseline every table compares with: Okapi BM25 (k1 1.2,
// b 0.75, Lucene's idf) over whole documents (title and text), no stemming. A
// word the query repeats counts each time, as in Lucene and rank_bm25.
type bm25 struct {
	ids      []string
	length   []float64
	avgdl    float64
	postings map[string][]posting
}

type posting struct {
	doc int
	tf  float64
}

const (
	baselineK1 = 1.2
	baselineB  = 0.75
)

func newBM25(docs []doc) *bm25 {
	b := &bm25{postings: map[string][]posting{}}
	var total float64
	for i, d := range docs {
		toks := baselineTokens(d.Title + " " + d.Text)
		tf := map[string]int{}
		for _, t := range toks {
			tf[t]++
		}
		for t, n := range tf {
			b.postings[t] = append(b.postings[t], posting{i, float64(n)})
		}
		b.ids = append(b.ids, d.ID)
		b.length = append(b.length, float64(len(toks)))
		total += float64(len(toks))
	}
	b.avgdl = max(total/float64(len(docs)), 1)
	return b
}

// search returns the ids of the k best documents for q, best first; documents
// sharing no word with q are not returned.
func (b *bm25) search(q string, k int) []string {
	n := float64(len(b.ids))
	score := map[int]float64{}
	for _, t := range baselineTokens(q) {
		ps := b.postings[t]
		df := float64(len(ps))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for _, p := range ps {
			norm := baselineK1 * (1 - baselineB + baselineB*b.length[p.doc]/b.avgdl)
			score[p.doc] += idf * p.tf * (baselineK1 + 1) / (p.tf + norm)
		}
	}
	docs := make([]int, 0, len(score))
	for d := range score {
		docs = append(docs, d)
	}
	sort.Slice(docs, func(i, j int) bool {
		if score[docs[i]] != score[docs[j]] {
			return score[docs[i]] > score[docs[j]]
		}
		return docs[i] < docs[j]
	})
	out := make([]string, 0, min(k, len(docs)))
	for _, d := range docs[:min(k, len(docs))] {
		out = append(out, b.ids[d])
	}
	return out
}
