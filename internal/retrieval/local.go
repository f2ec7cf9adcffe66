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
// their 4-letter pieces (so "aerodynamic" and "aerodynamics" still overlap) and
// adjacent word pairs, L2-normalised. Two texts are close when they share words or
// word pieces; synonyms that share no letters are not found. Use the OpenAI
// embedder for meaning.
//
// Hash collisions are what limit a hashed embedder: at 512 dimensions a chunk's
// ~700 features crowd each other and Cranfield's semantic nDCG@10 is 0.33; at
// 3,072 it is 0.38. The vectors are sparse, so the builtin index stores them as
// one byte per dimension (see quantize) and scans only a query's few non-zero
// dimensions.
type LocalEmbedder struct {
	dim int
}

// DefaultLocalDim is the local embedder's dimension unless configured otherwise.
const DefaultLocalDim = 3072

// Feature weights, relative to a word's own feature. Measured on five test
// collections (cmd/cairn-eval): pieces of one length (4) collide less than 3- to
// 5-letter ones and score as well.
const (
	ngramWeight  = 0.75 // all pieces of a word together
	ngramLen     = 4
	bigramWeight = 0.3
)

// MinSimilarity is the least cosine similarity between a query and a chunk that
// means they share a feature. Between unit vectors whose features only collide
// in the hash the cosine is noise of standard deviation about 1/√dim, whatever
// their lengths; a match is three of those away, and never needs more than 0.1
// (below ~900 dimensions the noise is so loud that a cut above it would silence
// real one-word matches too). A word no chunk contains weighs nothing in a query
// (see EmbedQuery), so a query of real words clears it: on five test collections
// no real query lost its results.
func (e *LocalEmbedder) MinSimilarity() float64 { return min(3/math.Sqrt(float64(e.dim)), 0.1) }

// NewLocalEmbedder returns a local embedder of dimension dim, rounded up to a
// multiple of 16 (at least 16).
func NewLocalEmbedder(dim int) *LocalEmbedder {
	dim = max((dim+15)/16*16, 16)
	return &LocalEmbedder{dim: dim}
}

// Model names the embedder, its feature set and its dimension, so vectors of
// another version or dimension are never compared.
func (e *LocalEmbedder) Model() string { return fmt.Sprintf("cairn-local-v2-%d", e.dim) }

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
			acc := make([]float64, e.dim)
			for i := w; i < len(texts); i += workers {
				if ctx.Err() != nil {
					return
				}
				out[i] = e.embed(texts[i], nil, acc)
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
// words from dominating the cosine (the same job idf does in BM25). A word of
// weight 0 (one no document contains) adds nothing, so a query of only such words
// is the zero vector.
func (e *LocalEmbedder) EmbedQuery(text string, weight func(word string) float64) []float32 {
	return e.embed(text, weight, make([]float64, e.dim))
}

func (e *LocalEmbedder) vector(text string) []float32 {
	return e.embed(text, nil, make([]float64, e.dim))
}

// embed computes text's vector in acc (zeroed on return), which is e.dim long.
func (e *LocalEmbedder) embed(text string, weight func(word string) float64, acc []float64) []float32 {
	add := func(h uint64, w float64) {
		i := int(h % uint64(e.dim))
		if h>>63 == 1 { // a sign bit makes colliding features cancel instead of pile up
			w = -w
		}
		acc[i] += w
	}
	ws := words(text)
	tf := map[string]int{}
	forms := map[string]string{} // stem → one surface form, for pieces
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
		if w == 0 {
			continue
		}
		add(hash("w", s), w)
		ngramFeatures(forms[s], w, add)
	}
	for b, n := range bigrams {
		w := bigramWeight * (1 + math.Log(float64(n)))
		if weight != nil {
			// A pair with an unseen word is unseen too.
			l, r, _ := strings.Cut(b, " ")
			if wl, wr := wordWeight(l), wordWeight(r); wl > 0 && wr > 0 {
				w *= (wl + wr) / 2
			} else {
				w = 0
			}
		}
		if w != 0 {
			add(hash("b", b), w)
		}
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
		acc[i] = 0
	}
	return v
}

// ngramFeatures calls add for the ngramLen-rune pieces of "<word>" with weight w
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
	count := len(rs) - ngramLen + 1
	gw := w * ngramWeight / math.Sqrt(float64(count))
	for i := 0; i+ngramLen <= len(rs); i++ {
		add(hashRunes(rs[i:i+ngramLen]), gw)
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
