package retrieval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// Result is one search hit: a chunk with its document's details.
type Result struct {
	DocumentID string
	Chunk      int
	Score      float64
	Text       string
	Title      string
	URL        string
	Metadata   map[string]any
}

// rrfK is reciprocal-rank fusion's damping constant (Cormack et al. use 60).
const rrfK = 60

// hybridDepth is how many candidates each side contributes to a hybrid search at least.
const hybridDepth = 50

// Rocchio's pseudo-relevance feedback for hybrid search: the semantic query moves
// towards the mean of the top keyword chunks' vectors, with the textbook weight,
// and re-ranks feedbackPool times the fused depth of semantic candidates.
const (
	feedbackChunks = 5
	feedbackWeight = 0.75
	feedbackPool   = 2
)

type scored struct {
	id    int64
	score float64
}

// Search finds the chunks that best match in.Query in the caller's workspace:
// keyword (BM25 over PostgreSQL full text), semantic (cosine over the caller's
// embedder's vectors) or hybrid (reciprocal-rank fusion of both). in.Filter
// restricts every mode alike. It takes the caller's quota before any work and
// returns its refusal (quota_exceeded), and unavailable when the embedder or
// vector index fails.
func (s *Service) Search(ctx context.Context, c Caller, in SearchInput) ([]Result, error) {
	if err := c.take(ctx); err != nil {
		return nil, err
	}
	var hits []scored
	switch in.Mode {
	case Keyword:
		kw, err := s.keyword(ctx, c, in.Query, in.TopK, in.Filter)
		if err != nil {
			return nil, err
		}
		hits = kw
	case Semantic:
		sem, err := s.semantic(ctx, c, in.Query, in.TopK, in.Filter)
		if err != nil {
			return nil, err
		}
		hits = sem
	default:
		hybrid, err := s.hybrid(ctx, c, in)
		if err != nil {
			return nil, err
		}
		hits = hybrid
	}
	return s.resolve(ctx, c, hits, in.TopK, in.Filter)
}

// fuse ranks by reciprocal-rank fusion: Σ 1/(k + rank) over the lists a chunk is in.
func fuse(lists ...[]scored) []scored {
	score := map[int64]float64{}
	for _, l := range lists {
		for rank, h := range l {
			score[h.id] += 1 / float64(rrfK+rank+1)
		}
	}
	out := make([]scored, 0, len(score))
	for id, sc := range score {
		out = append(out, scored{id, sc})
	}
	sortScored(out)
	return out
}

func sortScored(hs []scored) {
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].score != hs[j].score {
			return hs[i].score > hs[j].score
		}
		return hs[i].id < hs[j].id
	})
}

// BM25's parameters (Robertson's usual values).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// keywordBudget bounds the postings a keyword search reads: lexemes are taken
// rarest first until their chunk counts add up to it (the rarest always counts).
// The lexemes left out are the commonest, which carry the least weight; in a
// collection of a few thousand chunks none is.
const keywordBudget = 5_000

// keyword ranks chunks by BM25 over PostgreSQL full text. Any of the query's
// lexemes may match (a question's words are not all in its answer); phrases and
// -exclusions in the query must. Each lexeme's chunks come through the GIN index
// in one batched round trip, with ts_rank of that lexeme alone: for one lexeme
// with equal weights ts_rank is Σ_{j≤tf} 1/j² / (π²/6), which keywordScore turns
// back into the term frequency BM25 wants.
func (s *Service) keyword(ctx context.Context, c Caller, query string, limit int, f Filter) ([]scored, error) {
	pq := splitQuery(query)
	stats, err := s.q.TermStatsForQuery(ctx, dbq.TermStatsForQueryParams{WorkspaceID: c.WorkspaceID, Query: pq.plain})
	if err != nil {
		return nil, fmt.Errorf("retrieval: keyword search: %w", err)
	}
	if len(stats) == 0 {
		return []scored{}, nil
	}
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].Chunks != stats[j].Chunks {
			return stats[i].Chunks < stats[j].Chunks
		}
		return stats[i].Lexeme < stats[j].Lexeme
	})
	n := float64(stats[0].TotalChunks)
	avgdl := max(float64(stats[0].TotalTokens)/max(n, 1), 1)
	var params []dbq.ChunkTermHitsParams
	var weight []float64 // the query's count of the lexeme times its idf
	postings := int32(0)
	for _, t := range stats {
		if len(params) > 0 && postings+t.Chunks > keywordBudget {
			break
		}
		postings += t.Chunks
		weight = append(weight, float64(max(t.QueryTf, 1))*idf(n, float64(t.Chunks)))
		params = append(params, dbq.ChunkTermHitsParams{
			WorkspaceID: c.WorkspaceID, Term: quoteLexeme(t.Lexeme), Required: pq.required, Filter: f.jsonb(),
		})
	}
	score := map[int64]float64{}
	var qerr error
	s.q.ChunkTermHits(ctx, params).Query(func(i int, rows []dbq.ChunkTermHitsRow, err error) {
		if err != nil {
			qerr = err
			return
		}
		for _, r := range rows {
			score[r.ID] += weight[i] * keywordScore(r.Rank, float64(r.Length), avgdl)
		}
	})
	if qerr != nil {
		return nil, fmt.Errorf("retrieval: keyword search: %w", qerr)
	}
	out := make([]scored, 0, len(score))
	for id, sc := range score {
		out = append(out, scored{id, sc})
	}
	sortScored(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// idf is BM25's inverse document frequency of a term in df of n chunks (Lucene's
// form, never negative).
func idf(n, df float64) float64 {
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// keywordScore is BM25's saturating term-frequency part for a lexeme whose ts_rank
// alone (all weights 1, no normalisation) in a chunk of dl distinct lexemes is rank.
func keywordScore(rank, dl, avgdl float64) float64 {
	tf := termFrequency(rank)
	return tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*dl/avgdl))
}

// maxPositions is how many positions of one lexeme a tsvector keeps, so the most
// occurrences ts_rank can see.
const maxPositions = 256

// rankOfTF[n] is ts_rank of one lexeme that occurs n times with equal weights:
// PostgreSQL's calc_rank_or sums 1/j² over the occurrences, H₂(n), and divides by
// π²/6 (the sum's limit).
var rankOfTF = func() [maxPositions + 1]float64 {
	var t [maxPositions + 1]float64
	h := 0.0
	for n := 1; n <= maxPositions; n++ {
		h += 1 / float64(n*n)
		t[n] = h / (math.Pi * math.Pi / 6)
	}
	return t
}()

// termFrequency inverts rankOfTF: the occurrence count whose rank is nearest to
// rank (at least 1). ts_rank is a float4, precise enough to tell every count to 256 apart.
func termFrequency(rank float64) float64 {
	n := sort.SearchFloat64s(rankOfTF[1:], rank) + 1 // first count whose rank ≥ rank
	if n > maxPositions {
		return maxPositions
	}
	if n > 1 && rank-rankOfTF[n-1] < rankOfTF[n]-rank {
		n--
	}
	return float64(n)
}

// quoteLexeme writes a lexeme as a tsquery literal.
func quoteLexeme(l string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(l, `\`, `\\`), "'", "''") + "'"
}

// semantic embeds the query with the caller's embedder and asks the index for the
// nearest vectors of that embedder's model.
func (s *Service) semantic(ctx context.Context, c Caller, query string, limit int, f Filter) ([]scored, error) {
	qv, emb, err := s.queryVector(ctx, c, query)
	if err != nil || qv == nil {
		return nil, err
	}
	model := emb.Model()
	required := splitQuery(query).required
	depth := limit
	if required != "" {
		depth = limit * requiredPool
	}
	hits, err := s.nearest(ctx, c, model, qv, depth, f)
	if err != nil {
		return nil, err
	}
	if hits, err = s.matching(ctx, c, similar(emb, hits), required); err != nil {
		return nil, err
	}
	return hits[:min(limit, len(hits))], nil
}

// requiredPool is how many times more nearest chunks a semantic search with
// requirements (phrases, exclusions) considers, since some fail them.
const requiredPool = 4

// matching keeps the hits whose chunks match required (websearch syntax), in order.
func (s *Service) matching(ctx context.Context, c Caller, hits []scored, required string) ([]scored, error) {
	if required == "" || len(hits) == 0 {
		return hits, nil
	}
	ids := make([]int64, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	ok, err := s.q.ChunkMatching(ctx, dbq.ChunkMatchingParams{WorkspaceID: c.WorkspaceID, Ids: ids, Required: required})
	if err != nil {
		return nil, fmt.Errorf("retrieval: semantic search: %w", err)
	}
	match := make(map[int64]bool, len(ok))
	for _, id := range ok {
		match[id] = true
	}
	out := hits[:0]
	for _, h := range hits {
		if match[h.id] {
			out = append(out, h)
		}
	}
	return out, nil
}

// similar returns hits, or none when even the best is below the embedder's least
// similarity that means a match (see LocalEmbedder.MinSimilarity): a query that
// matches nothing finds nothing rather than the least distant chunks. The cut is
// for the whole query, not per hit: a long question's partial matches score low
// in cosine yet rank well, and cutting them loses recall. Hits are best first.
func similar(emb Embedder, hits []scored) []scored {
	if local, ok := emb.(*LocalEmbedder); ok && len(hits) > 0 && hits[0].score < local.MinSimilarity() {
		return nil
	}
	return hits
}

// hybrid fuses keyword and semantic rankings by reciprocal rank. Both run at once;
// then the semantic side gets Rocchio's pseudo-relevance feedback: the query moves
// towards the mean vector of the best keyword chunks and re-ranks every candidate
// either side found, so passages that share the answer's vocabulary rather than
// only the question's rise.
func (s *Service) hybrid(ctx context.Context, c Caller, in SearchInput) ([]scored, error) {
	depth := max(in.TopK, hybridDepth)
	var kw []scored
	var kwErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		kw, kwErr = s.keyword(ctx, c, in.Query, depth, in.Filter)
	}()
	qv, emb, err := s.queryVector(ctx, c, in.Query)
	var sem []scored
	var model string
	if err == nil && qv != nil {
		model = emb.Model()
		if sem, err = s.nearest(ctx, c, model, qv, depth*feedbackPool, in.Filter); err == nil {
			sem, err = s.matching(ctx, c, similar(emb, sem), splitQuery(in.Query).required)
		}
	}
	<-done
	if kwErr != nil {
		return nil, kwErr
	}
	if err != nil {
		return nil, err
	}
	if len(kw) > 0 && qv != nil {
		if sem, err = s.feedback(ctx, c, model, qv, kw, sem); err != nil {
			return nil, err
		}
	}
	return fuse(kw, sem[:min(depth, len(sem))]), nil
}

// feedback re-ranks the union of the keyword and semantic candidates by the query
// moved towards the mean of the top keyword chunks' vectors. The semantic
// candidates were already found similar enough; the keyword ones matched words.
func (s *Service) feedback(ctx context.Context, c Caller, model string, qv []float32, kw, sem []scored) ([]scored, error) {
	top := kw[:min(feedbackChunks, len(kw))]
	topIDs := make([]int64, len(top))
	for i, h := range top {
		topIDs[i] = h.id
	}
	vecs, err := s.vectors(ctx, c, model, topIDs, len(qv))
	if err != nil {
		return nil, err
	}
	q := append([]float32(nil), qv...)
	normalize(q)
	sparse := nonZero(q) < len(q)/4
	for _, h := range top {
		if v, ok := vecs[h.id]; ok {
			for i := range q {
				q[i] += float32(feedbackWeight) / float32(len(top)) * v[i]
			}
		}
	}
	if sparse {
		// A sparse embedder's dimensions are features: keep the expansion's
		// strongest, as Rocchio's expansion keeps its best terms, so scoring reads
		// few dimensions.
		keepStrongest(q, feedbackDims)
	}
	normalize(q)

	seen := map[int64]bool{}
	var ids []int64
	for _, l := range [][]scored{kw, sem} {
		for _, h := range l {
			if !seen[h.id] {
				seen[h.id] = true
				ids = append(ids, h.id)
			}
		}
	}
	return s.score(ctx, c, model, q, ids)
}

// feedbackDims is how many dimensions a sparse embedder's feedback query keeps.
const feedbackDims = 256

func nonZero(v []float32) int {
	n := 0
	for _, x := range v {
		if x != 0 {
			n++
		}
	}
	return n
}

// keepStrongest zeroes all but v's k largest values by magnitude.
func keepStrongest(v []float32, k int) {
	if nonZero(v) <= k {
		return
	}
	mags := make([]float32, 0, len(v))
	for _, x := range v {
		if x != 0 {
			mags = append(mags, abs32(x))
		}
	}
	sort.Slice(mags, func(i, j int) bool { return mags[i] > mags[j] })
	cut := mags[k-1]
	kept := 0
	for i, x := range v {
		if abs32(x) < cut || kept == k {
			v[i] = 0
		} else if x != 0 {
			kept++
		}
	}
}

// score returns q's similarity to each chunk of ids that has a vector of model,
// best first: from the index when it can score in place, else from the vectors.
func (s *Service) score(ctx context.Context, c Caller, model string, q []float32, ids []int64) ([]scored, error) {
	out := make([]scored, 0, len(ids))
	missing := ids
	if sc, ok := s.index.(VectorScorer); ok {
		strIDs := make([]string, len(ids))
		for i, id := range ids {
			strIDs[i] = strconv.FormatInt(id, 10)
		}
		got, err := sc.Score(ctx, c.WorkspaceID, model, q, strIDs)
		if err != nil {
			return nil, dependency(err, "vector index")
		}
		missing = nil
		for i, id := range ids {
			if v, ok := got[strIDs[i]]; ok {
				out = append(out, scored{id, float64(v)})
			} else {
				missing = append(missing, id)
			}
		}
	}
	if len(missing) > 0 {
		vecs, err := s.vectors(ctx, c, model, missing, len(q))
		if err != nil {
			return nil, err
		}
		for id, v := range vecs {
			out = append(out, scored{id, float64(dot(q, v))})
		}
	}
	sortScored(out)
	return out, nil
}

// vectors returns the unit-length vectors of chunks, from the index when it can
// hand them over, else from PostgreSQL.
func (s *Service) vectors(ctx context.Context, c Caller, model string, ids []int64, dim int) (map[int64][]float32, error) {
	out := make(map[int64][]float32, len(ids))
	missing := ids
	if f, ok := s.index.(VectorFetcher); ok {
		strIDs := make([]string, len(ids))
		for i, id := range ids {
			strIDs[i] = strconv.FormatInt(id, 10)
		}
		got, err := f.Fetch(ctx, c.WorkspaceID, model, strIDs)
		if err != nil {
			return nil, dependency(err, "vector index")
		}
		missing = nil
		for i, id := range ids {
			if v, ok := got[strIDs[i]]; ok && len(v) == dim {
				out[id] = v
			} else {
				missing = append(missing, id)
			}
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := s.q.ChunkVectorGetMany(ctx, dbq.ChunkVectorGetManyParams{WorkspaceID: c.WorkspaceID, Model: model, ChunkIds: missing})
	if err != nil {
		return nil, fmt.Errorf("retrieval: feedback vectors: %w", err)
	}
	for _, r := range rows {
		if vectorDim(r.Embedding) == dim {
			v := make([]float32, dim)
			decodeVector(r.Embedding, v)
			normalize(v)
			out[r.ChunkID] = v
		}
	}
	return out, nil
}

// queryVector embeds a search query with the workspace's embedder, which it
// returns; the local embedder's query is weighted by word rarity (see
// LocalEmbedder.EmbedQuery). A query with no words gives a nil vector.
func (s *Service) queryVector(ctx context.Context, c Caller, query string) ([]float32, Embedder, error) {
	plain := splitQuery(query).plain
	emb, err := s.embedderFor(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	var qv []float32
	if local, ok := emb.(*LocalEmbedder); ok {
		weight, err := s.rarity(ctx, c, plain)
		if err != nil {
			return nil, nil, err
		}
		qv = local.EmbedQuery(plain, weight)
	} else if qv, err = s.embedQuery(ctx, c, emb, plain); err != nil {
		return nil, nil, err
	}
	if isZero(qv) {
		return nil, emb, nil
	}
	return qv, emb, nil
}

// embedQuery embeds one query with a remote embedder, through the shared query
// cache when there is one: a vector another replica (or an earlier search) got for
// the same text from the same model is reused instead of paid for again.
func (s *Service) embedQuery(ctx context.Context, c Caller, emb Embedder, text string) ([]float32, error) {
	scope := emb.Model()
	if strings.HasPrefix(scope, "custom/") {
		// A workspace's own endpoint, paid with its own key: its vectors are its own,
		// even if another workspace names the same URL and model.
		scope += "/" + c.WorkspaceID.String()
	}
	if s.queries != nil {
		if v, ok := s.queries.Get(ctx, scope, text); ok {
			return v, nil
		}
	}
	vs, err := emb.Embed(ctx, []string{text})
	if err != nil {
		return nil, dependency(err, "embedding service")
	}
	if len(vs) != 1 {
		return nil, dependency(fmt.Errorf("embedder returned %d vectors for 1 text", len(vs)), "embedding service")
	}
	if s.queries != nil {
		s.queries.Put(ctx, scope, text, vs[0])
	}
	return vs[0], nil
}

// nearest asks the vector index for the chunks closest to qv.
func (s *Service) nearest(ctx context.Context, c Caller, model string, qv []float32, limit int, f Filter) ([]scored, error) {
	matches, err := s.index.Query(ctx, c.WorkspaceID, model, qv, limit, f)
	if err != nil {
		return nil, dependency(err, "vector index")
	}
	out := make([]scored, 0, len(matches))
	seen := make(map[int64]bool, len(matches))
	for _, m := range matches {
		id, ok := chunkOfIndexID(m.ID)
		if !ok || seen[id] {
			continue // not a chunk of ours, or one already found under an older id
		}
		seen[id] = true
		out = append(out, scored{id, float64(m.Score)})
	}
	return out, nil
}

// rarity returns each of the query's words' idf in the caller's workspace, as BM25
// computes it, for weighting the local embedder's query vector. A word no chunk
// contains weighs nothing: it cannot make any chunk closer, only collide with
// another feature in the hash.
func (s *Service) rarity(ctx context.Context, c Caller, query string) (func(string) float64, error) {
	ws := words(query)
	rows, err := s.q.TermStatsForWords(ctx, dbq.TermStatsForWordsParams{WorkspaceID: c.WorkspaceID, Words: ws})
	if err != nil {
		return nil, fmt.Errorf("retrieval: word statistics: %w", err)
	}
	st, err := s.q.RetrievalStateGet(ctx, c.WorkspaceID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("retrieval: word statistics: %w", err)
	}
	n := float64(st.Chunks)
	weights := make(map[string]float64, len(rows))
	for _, r := range rows {
		if r.Chunks > 0 {
			weights[r.Word] = idf(n, float64(r.Chunks))
		}
	}
	return func(w string) float64 { return weights[w] }, nil
}

func isZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// resolve loads the best hits' chunks from PostgreSQL, in order, a few more than
// topK at a time. A hit PostgreSQL no longer has (a vector an external index kept
// after a failed write) or whose document fails the filter is dropped, so no index
// can return a stale chunk.
func (s *Service) resolve(ctx context.Context, c Caller, hits []scored, topK int, f Filter) ([]Result, error) {
	out := []Result{}
	for len(hits) > 0 && len(out) < topK {
		batch := hits[:min(len(hits), 2*topK+8)]
		hits = hits[len(batch):]
		ids := make([]int64, len(batch))
		for i, h := range batch {
			ids[i] = h.id
		}
		rows, err := s.q.ChunkGetMany(ctx, dbq.ChunkGetManyParams{WorkspaceID: c.WorkspaceID, Ids: ids})
		if err != nil {
			return nil, fmt.Errorf("retrieval: load chunks: %w", err)
		}
		byID := make(map[int64]dbq.ChunkGetManyRow, len(rows))
		for _, r := range rows {
			byID[r.ID] = r
		}
		for _, h := range batch {
			r, ok := byID[h.id]
			if !ok {
				continue
			}
			md := decodeMetadata(r.Metadata)
			if !f.Match(md) {
				continue
			}
			out = append(out, Result{
				DocumentID: r.DocumentID, Chunk: int(r.Position), Score: h.score, Text: r.Text,
				Title: r.Title, URL: r.Url, Metadata: md,
			})
			if len(out) == topK {
				break
			}
		}
	}
	return out, nil
}

// parsedQuery is a search query taken apart by splitQuery.
type parsedQuery struct {
	// plain is the words that rank, a quoted phrase's words included.
	plain string
	// required is what must match, in websearch_to_tsquery syntax: quoted phrases
	// (in a short query) and -exclusions; "" when nothing is required.
	required string
}

// sentenceWords is how many words outside quotes make a query a sentence, in
// which quotation marks only quote: a question that quotes a title or a term must
// not lose every chunk that words it differently.
const sentenceWords = 5

// splitQuery separates what must match from the words that rank. Questions are
// written in words the passage may not all contain, so plain words are
// alternatives, not requirements. Quoted phrases must match in a short query of
// operators ("rate limit" redis -memcached) and only rank in a sentence; an
// exclusion is a word starting with '-' and a letter ("-40" is a number), and
// holds in any query. An unpaired quote is ignored.
func splitQuery(q string) parsedQuery {
	var outside, phrases []string
	rest := q
	for {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '"')
		if j < 0 {
			break
		}
		outside = append(outside, rest[:i])
		if phrase := strings.Join(strings.Fields(rest[i+1:i+1+j]), " "); phrase != "" {
			phrases = append(phrases, phrase)
		}
		rest = rest[i+1+j+1:]
	}
	outside = append(outside, strings.ReplaceAll(rest, `"`, " "))
	var plain, required []string
	free := 0
	for _, w := range strings.Fields(strings.Join(outside, " ")) {
		if isExclusion(w) {
			required = append(required, w)
			continue
		}
		plain = append(plain, w)
		free++
	}
	plain = append(plain, phrases...)
	if free < sentenceWords {
		for _, p := range phrases {
			required = append(required, `"`+p+`"`)
		}
	}
	return parsedQuery{plain: strings.Join(plain, " "), required: strings.Join(required, " ")}
}

// isExclusion reports whether w is "-" and a word starting with a letter.
func isExclusion(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	r, _ := utf8.DecodeRuneInString(w[1:])
	return unicode.IsLetter(r)
}
