package retrieval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
)

// LocalEmbedder is the offline, deterministic default embedder. It is lexical, not
// semantic: a text's vector is a feature-hashed bag of its stemmed content words,
// their character n-grams (so "aerodynamic" and "aerodynamics", or a typo, still
// overlap) and adjacent word pairs, L2-normalised. Two texts are close when they
// share words or word pieces; synonyms that share no letters are not found. Use the
// OpenAI embedder for meaning.
type LocalEmbedder struct {
	dim int
}

// DefaultLocalDim is the local embedder's dimension unless configured otherwise.
const DefaultLocalDim = 512

// Feature weights, relative to a word's own feature.
const (
	ngramWeight  = 0.6 // all n-grams of a word together
	bigramWeight = 0.4
)

// NewLocalEmbedder returns a local embedder of dimension dim (at least 16).
func NewLocalEmbedder(dim int) *LocalEmbedder {
	if dim < 16 {
		dim = 16
	}
	return &LocalEmbedder{dim: dim}
}

// Model names the embedder and its dimension, so vectors of different dimensions
// are never compared.
func (e *LocalEmbedder) Model() string { return fmt.Sprintf("cairn-local-v1-%d", e.dim) }

// Dim returns the vectors' dimension.
func (e *LocalEmbedder) Dim() int { return e.dim }

// Embed returns one unit vector per text; a text without words gets the zero vector.
func (e *LocalEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	workers := min(runtime.GOMAXPROCS(0), (len(texts)+31)/32)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(texts); i += workers {
				if ctx.Err() != nil {
					return
				}
				out[i] = e.vector(texts[i])
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// EmbedQuery embeds a query with each word's features scaled by weight(word), the
// word's rarity in the collection searched: documents are embedded without
// knowing their collection, but a query can be weighted by it, which keeps common
// words from dominating the cosine (the same job idf does in BM25).
func (e *LocalEmbedder) EmbedQuery(text string, weight func(word string) float64) []float32 {
	return e.embed(text, weight)
}

func (e *LocalEmbedder) vector(text string) []float32 { return e.embed(text, nil) }

func (e *LocalEmbedder) embed(text string, weight func(word string) float64) []float32 {
	acc := make([]float64, e.dim)
	add := func(h uint64, w float64) {
		i := int(h % uint64(e.dim))
		if h>>63 == 1 { // a sign bit makes colliding features cancel instead of pile up
			w = -w
		}
		acc[i] += w
	}
	ws := words(text)
	tf := map[string]int{}
	forms := map[string]string{} // stem → one surface form, for n-grams
	var prev string
	bigrams := map[string]int{}
	for _, w := range ws {
		if stopwords[w] {
			prev = ""
			continue
		}
		s := stem(w)
		tf[s]++
		if _, ok := forms[s]; !ok {
			forms[s] = w
		}
		if prev != "" {
			bigrams[prev+" "+s]++
		}
		prev = s
	}
	wordWeight := func(s string) float64 {
		if weight == nil {
			return 1
		}
		return weight(forms[s])
	}
	for s, n := range tf {
		w := (1 + math.Log(float64(n))) * wordWeight(s)
		add(hash("w", s), w)
		ngramFeatures(forms[s], w, add)
	}
	for b, n := range bigrams {
		w := bigramWeight * (1 + math.Log(float64(n)))
		if weight != nil {
			l, r, _ := strings.Cut(b, " ")
			w *= (wordWeight(l) + wordWeight(r)) / 2
		}
		add(hash("b", b), w)
	}
	var norm float64
	for _, v := range acc {
		norm += v * v
	}
	v := make([]float32, e.dim)
	if norm == 0 {
		return v
	}
	inv := 1 / math.Sqrt(norm)
	for i, x := range acc {
		v[i] = float32(x * inv)
	}
	return v
}

// ngramFeatures calls add for the 3- to 5-rune pieces of "<word>" with weight w
// shared among them; short words have none (their word feature says it all).
// Pieces are hashed in place, without building strings: embedding is on the
// ingest path.
func ngramFeatures(word string, w float64, add func(uint64, float64)) {
	var buf [64]rune
	rs := append(buf[:0], '<')
	for _, r := range word {
		rs = append(rs, r)
	}
	rs = append(rs, '>')
	if len(rs) < 6 {
		return
	}
	count := 0
	for n := 3; n <= 5; n++ {
		count += max(len(rs)-n+1, 0)
	}
	gw := w * ngramWeight / math.Sqrt(float64(count))
	for n := 3; n <= 5; n++ {
		for i := 0; i+n <= len(rs); i++ {
			add(hashRunes(rs[i:i+n]), gw)
		}
	}
}

// hashRunes is hash("g", string(rs)) without the string.
func hashRunes(rs []rune) uint64 {
	h := fnvStart("g")
	var b [utf8.UTFMax]byte
	for _, r := range rs {
		n := utf8.EncodeRune(b[:], r)
		for i := 0; i < n; i++ {
			h ^= uint64(b[i])
			h *= fnvPrime
		}
	}
	return mix(h)
}

const fnvPrime = 1099511628211

// hash is 64-bit FNV-1a of kind and s, kept inline so embedding allocates little.
func hash(kind, s string) uint64 {
	h := fnvStart(kind)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return mix(h)
}

func fnvStart(kind string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(kind); i++ {
		h ^= uint64(kind[i])
		h *= fnvPrime
	}
	h ^= 0xff
	h *= fnvPrime
	return h
}

// mix finishes with murmur3's mixer: FNV's low bits mix poorly, and a modulus takes them.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
