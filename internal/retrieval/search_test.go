package retrieval

import (
	"math"
	"strings"
	"testing"
)

func TestFuse(t *testing.T) {
	ids := func(hs []scored) string {
		var b strings.Builder
		for _, h := range hs {
			b.WriteString(string(rune('a' + h.id)))
		}
		return b.String()
	}
	list := func(s string) []scored {
		var out []scored
		for i, r := range s {
			out = append(out, scored{int64(r - 'a'), float64(100 - i)})
		}
		return out
	}
	cases := []struct {
		name  string
		lists []string
		want  string
	}{
		{"NoLists", nil, ""},
		{"OneListKeepsItsOrder", []string{"cab"}, "cab"},
		{"InBothListsBeatsFirstInOne", []string{"ab", "cb"}, "bac"},
		{"EqualRanksTieByID", []string{"b", "a"}, "ab"},
		{"AgreementBeatsOneTopRank", []string{"axyz", "bzxy"}, "xzyab"},
		{"EmptyListChangesNothing", []string{"cab", ""}, "cab"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lists [][]scored
			for _, l := range tc.lists {
				lists = append(lists, list(l))
			}
			if got := ids(fuse(lists...)); got != tc.want {
				t.Fatalf("fuse(%q) = %q, want %q", tc.lists, got, tc.want)
			}
		})
	}
	t.Run("ScoreIsTheSumOfReciprocalRanks", func(t *testing.T) {
		got := fuse(list("ab"), list("ba"))
		want := 1.0/(rrfK+1) + 1.0/(rrfK+2)
		if math.Abs(got[0].score-want) > 1e-12 || math.Abs(got[1].score-want) > 1e-12 {
			t.Fatalf("scores %v, want both %v", got, want)
		}
	})
}

// tsRank is what PostgreSQL's ts_rank('{1,1,1,1}', tsv, 'lexeme', 0) returns for a
// lexeme that occurs n times: Σ_{j≤n} 1/j² ÷ (π²/6), as a float4.
func tsRank(n int) float64 {
	var h float64
	for j := 1; j <= n; j++ {
		h += 1 / float64(j*j)
	}
	return float64(float32(h / 1.64493406685))
}

func TestTermFrequency(t *testing.T) {
	for n := 1; n <= maxPositions; n++ {
		if got := termFrequency(tsRank(n)); got != float64(n) {
			t.Fatalf("termFrequency(rank of %d occurrences) = %v", n, got)
		}
	}
	cases := []struct {
		name string
		rank float64
		want float64
	}{
		{"ZeroIsOne", 0, 1},
		{"BelowOneOccurrenceIsOne", tsRank(1) / 2, 1},
		{"PastTheLastPositionIsCapped", 1, maxPositions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := termFrequency(tc.rank); got != tc.want {
				t.Fatalf("termFrequency(%v) = %v, want %v", tc.rank, got, tc.want)
			}
		})
	}
}

func TestKeywordScore(t *testing.T) {
	bm25 := func(tf, dl, avgdl float64) float64 {
		return tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*dl/avgdl))
	}
	cases := []struct {
		name          string
		tf, dl, avgdl float64
	}{
		{"OnceInAnAverageChunk", 1, 50, 50},
		{"ThreeTimesInAShortChunk", 3, 20, 50},
		{"TwiceInALongChunk", 2, 200, 50},
		{"ManyTimes", 40, 60, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := keywordScore(tsRank(int(tc.tf)), tc.dl, tc.avgdl)
			if want := bm25(tc.tf, tc.dl, tc.avgdl); math.Abs(got-want) > 1e-9 {
				t.Fatalf("keywordScore = %v, want BM25's %v", got, want)
			}
		})
	}
	t.Run("SaturatesBelowK1PlusOne", func(t *testing.T) {
		prev := 0.0
		for n := 1; n <= maxPositions; n++ {
			s := keywordScore(tsRank(n), 50, 50)
			if s <= prev || s >= bm25K1+1 {
				t.Fatalf("%d occurrences score %v after %v; want rising and below %v", n, s, prev, bm25K1+1)
			}
			prev = s
		}
	})
	t.Run("LongerChunksScoreLess", func(t *testing.T) {
		if short, long := keywordScore(tsRank(2), 25, 50), keywordScore(tsRank(2), 100, 50); short <= long {
			t.Fatalf("short chunk %v ≤ long chunk %v", short, long)
		}
	})
}

func TestIDF(t *testing.T) {
	if rare, common := idf(1000, 1), idf(1000, 900); rare <= common || common <= 0 {
		t.Fatalf("idf(rare) %v, idf(common) %v: want rare > common > 0", rare, common)
	}
	if got := idf(10, 10); got <= 0 {
		t.Fatalf("a word in every chunk has idf %v, want > 0 (never negative)", got)
	}
}

func TestSplitQuery(t *testing.T) {
	cases := []struct {
		name, query     string
		plain, required string
	}{
		{"Words", "how do wings lift", "how do wings lift", ""},
		{"PhraseInAShortQueryMustMatch", `"rate limit" redis`, `redis rate limit`, `"rate limit"`},
		{"PhraseAloneMustMatch", `"rate limit"`, `rate limit`, `"rate limit"`},
		{"PhraseInASentenceOnlyRanks", `articles on formatting systems, including "what you see is what you get" systems`,
			`articles on formatting systems, including systems what you see is what you get`, ""},
		{"ExclusionHoldsInAShortQuery", "redis -memcached", "redis", "-memcached"},
		{"ExclusionHoldsInASentence", "how do I rate limit requests in go -java", "how do I rate limit requests in go", "-java"},
		{"NegativeNumberIsAWord", "temperatures of -40 degrees", "temperatures of -40 degrees", ""},
		{"HyphenInsideAWordIsAWord", "zero-one matrices", "zero-one matrices", ""},
		{"LoneDashIsAWord", "a - b", "a - b", ""},
		{"UnpairedQuoteIsIgnored", `the "rotation of eigenvectors`, "the rotation of eigenvectors", ""},
		{"EmptyPhraseIsIgnored", `redis ""`, "redis", ""},
		{"PhraseSpacesAreNormalised", `"  rate    limit "`, "rate limit", `"rate limit"`},
		{"NonLatinExclusion", "чай -кофе", "чай", "-кофе"},
		{"Empty", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := splitQuery(tc.query)
			if got.plain != tc.plain || got.required != tc.required {
				t.Fatalf("splitQuery(%q) = plain %q, required %q; want %q, %q", tc.query, got.plain, got.required, tc.plain, tc.required)
			}
		})
	}
}

func TestLocalEmbedderWeighting(t *testing.T) {
	e := NewLocalEmbedder(DefaultLocalDim)
	cos := func(a, b []float32) float64 { return float64(dot(a, b)) }
	sourdough := e.vector("A sourdough starter is flour and water fermented by wild yeast.")
	satellites := e.vector("Satellites keep their batteries alive through eclipses.")
	weights := map[string]float64{"yeast": 3, "starter": 2.5, "alive": 2.5, "keep": 1.2}

	t.Run("UnseenWordsWeighNothing", func(t *testing.T) {
		// "keep" and "alive" are in no document of this workspace.
		w := func(s string) float64 {
			if s == "keep" || s == "alive" {
				return 0
			}
			return weights[s]
		}
		q := e.EmbedQuery("how do I keep my yeast starter alive", w)
		if want := e.EmbedQuery("yeast starter", w); cos(q, want) < 0.999 {
			t.Fatalf("unseen words moved the query: cosine %v to the query without them", cos(q, want))
		}
		if s, o := cos(q, sourdough), cos(q, satellites); s <= o || o > e.MinSimilarity() {
			t.Fatalf("sourdough %v, satellites %v: want sourdough first and satellites below %v", s, o, e.MinSimilarity())
		}
	})
	t.Run("OnlyUnseenWordsIsTheZeroVector", func(t *testing.T) {
		q := e.EmbedQuery("xqzvv plonk", func(string) float64 { return 0 })
		if !isZero(q) {
			t.Fatal("a query of unseen words has a non-zero vector")
		}
	})
	t.Run("RarerWordsWeighMore", func(t *testing.T) {
		q := e.EmbedQuery("yeast satellites", func(s string) float64 { return map[string]float64{"yeast": 4, "satellites": 1}[s] })
		if s, o := cos(q, sourdough), cos(q, satellites); s <= o {
			t.Fatalf("sourdough %v ≤ satellites %v: the rarer word should pull harder", s, o)
		}
		q = e.EmbedQuery("yeast satellites", func(s string) float64 { return map[string]float64{"yeast": 1, "satellites": 4}[s] })
		if s, o := cos(q, sourdough), cos(q, satellites); s >= o {
			t.Fatalf("sourdough %v ≥ satellites %v: the rarer word should pull harder", s, o)
		}
	})
	t.Run("InflectionsOverlap", func(t *testing.T) {
		if got := cos(e.vector("aerodynamics of wings"), e.vector("aerodynamic wing")); got < 0.5 {
			t.Fatalf("cosine %v between inflections, want ≥ 0.5", got)
		}
	})
	t.Run("UnitLength", func(t *testing.T) {
		if n := cos(sourdough, sourdough); math.Abs(n-1) > 1e-5 {
			t.Fatalf("|v|² = %v", n)
		}
	})
}

func TestVectorFormats(t *testing.T) {
	v := NewLocalEmbedder(64).vector("int8 codes keep the ranking")
	for name, enc := range map[string]func([]float32) []byte{"float32": encodeVector, "int8": encodeVectorInt8} {
		t.Run(name, func(t *testing.T) {
			b := enc(v)
			if got := vectorDim(b); got != len(v) {
				t.Fatalf("vectorDim = %d, want %d", got, len(v))
			}
			got := make([]float32, len(v))
			decodeVector(b, got)
			if c := dot(got, v); math.Abs(float64(c)-1) > 1e-3 {
				t.Fatalf("decoded vector's cosine to the original is %v", c)
			}
		})
	}
}

func TestIndexID(t *testing.T) {
	cases := []struct {
		name, model string
		bare        bool
	}{
		{"LocalKeepsTheChunkID", "cairn-local-v2-3072", true},
		{"OldLocalKeepsTheChunkID", "cairn-local-v1-512", true},
		{"OpenAINamesTheModel", "openai/text-embedding-3-small", false},
		{"CustomNamesTheModel", "custom/m@64#0123abcd", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := indexID(42, tc.model)
			if (id == "42") != tc.bare {
				t.Fatalf("indexID(42, %q) = %q", tc.model, id)
			}
			if n, ok := chunkOfIndexID(id); !ok || n != 42 {
				t.Fatalf("chunkOfIndexID(%q) = %d, %v", id, n, ok)
			}
		})
	}
	t.Run("ModelsDoNotShareIDs", func(t *testing.T) {
		if indexID(42, "openai/a") == indexID(42, "custom/b#00") {
			t.Fatal("two models' vectors of one chunk share an id")
		}
	})
	t.Run("NotAChunk", func(t *testing.T) {
		if _, ok := chunkOfIndexID("doc-7"); ok {
			t.Fatal("a foreign id parsed as a chunk")
		}
	})
}
