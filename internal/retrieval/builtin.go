package retrieval

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// DefaultCacheBytes bounds the builtin index's memory unless configured otherwise.
const DefaultCacheBytes = 1 << 30

// BuiltinIndex is the default vector index: exact cosine search in process over
// the vectors PostgreSQL already holds (chunk_vectors). Each workspace's vectors of
// one model are cached at one byte per dimension (see quantize), stored by
// dimension rather than by row so that a query reads only the dimensions where it
// is not zero (the local embedder's queries use a few dozen of 3,072), and tagged
// with the workspace's version; a query first reads the version (one primary-key lookup), so a write
// committed through any replica is seen by the next query on every replica, which
// then loads only what changed since its copy. Cached workspaces are evicted least
// recently used first to keep the total under the byte budget.
type BuiltinIndex struct {
	pool   *pgxpool.Pool
	q      *dbq.Queries
	budget int64

	mu      sync.Mutex
	entries map[cacheKey]*entry
	models  map[uuid.UUID]map[string]*entry // the same entries by workspace and model
	lru     *list.List                      // of *entry, most recently used in front
	used    int64
}

type cacheKey struct {
	workspace uuid.UUID
	model     string
}

// entry is one workspace's vectors of one model.
type entry struct {
	key  cacheKey
	elem *list.Element
	used time.Time // last asked for; guarded by BuiltinIndex.mu

	load sync.Mutex // one refresh at a time

	mu      sync.RWMutex // guards what follows
	loaded  bool
	version int64
	dim     int
	ids     []int64
	docs    []int32   // row → index into docIDs/metas
	cols    [][]int8  // cols[d][i] is row i's code in dimension d
	scale   []float32 // row i's unit vector is cols[·][i]·scale[i]
	row     map[int64]int
	docIDs  []string
	metas   []map[string]any
	docOf   map[string]int32
	bytes   int64
}

// NewBuiltinIndex returns the builtin index over pool, using at most budget bytes
// for cached vectors (DefaultCacheBytes when budget ≤ 0).
func NewBuiltinIndex(pool *pgxpool.Pool, budget int64) *BuiltinIndex {
	if budget <= 0 {
		budget = DefaultCacheBytes
	}
	return &BuiltinIndex{pool: pool, q: dbq.New(pool), budget: budget, entries: map[cacheKey]*entry{}, models: map[uuid.UUID]map[string]*entry{}, lru: list.New()}
}

// Upsert does nothing: the service has written the vectors to PostgreSQL in the
// same transaction, and the version it bumped makes every cache load them.
func (b *BuiltinIndex) Upsert(context.Context, uuid.UUID, string, []Vector) error { return nil }

// Delete does nothing, for the same reason: the chunks' tombstones reach every cache.
func (b *BuiltinIndex) Delete(context.Context, uuid.UUID, []string) error { return nil }

// Query returns the topK vectors of model closest to q by cosine similarity among
// the documents that pass f.
func (b *BuiltinIndex) Query(ctx context.Context, workspaceID uuid.UUID, model string, q []float32, topK int, f Filter) ([]Match, error) {
	st, err := b.q.RetrievalStateGet(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("builtin index: version: %w", err)
	}
	e := b.entry(cacheKey{workspaceID, model})
	e.mu.RLock()
	fresh := e.loaded && e.version >= st.Version
	e.mu.RUnlock()
	if !fresh {
		if err := b.refresh(ctx, e, st.Version); err != nil {
			return nil, err
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.search(q, topK, f), nil
}

// Fetch returns the cached, unit-length vectors of ids; it never loads. The slices
// are copies.
func (b *BuiltinIndex) Fetch(_ context.Context, workspaceID uuid.UUID, model string, ids []string) (map[string][]float32, error) {
	b.mu.Lock()
	e, ok := b.entries[cacheKey{workspaceID, model}]
	b.mu.Unlock()
	out := map[string][]float32{}
	if !ok {
		return out, nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			continue
		}
		if i, ok := e.row[n]; ok {
			out[id] = e.vector(i)
		}
	}
	return out, nil
}

// Score returns q's cosine similarity to each cached vector of ids; it never
// loads, so ids the cache does not hold are left out.
func (b *BuiltinIndex) Score(_ context.Context, workspaceID uuid.UUID, model string, q []float32, ids []string) (map[string]float32, error) {
	b.mu.Lock()
	e, ok := b.entries[cacheKey{workspaceID, model}]
	b.mu.Unlock()
	out := map[string]float32{}
	if !ok {
		return out, nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(q) != e.dim {
		return out, nil
	}
	var rows []int
	var held []string
	for _, id := range ids {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			continue
		}
		if i, ok := e.row[n]; ok {
			rows = append(rows, i)
			held = append(held, id)
		}
	}
	for i, s := range e.score(q, rows) {
		out[held[i]] = s
	}
	return out, nil
}

// Stats reports the cached vectors and bytes, for benchmarks and operators.
func (b *BuiltinIndex) Stats() (vectors int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entries {
		e.mu.RLock()
		vectors += len(e.ids)
		e.mu.RUnlock()
	}
	return vectors, b.used
}

// entry returns the cache entry for key, creating it, and marks it used. A
// workspace searches one model at a time, so its entries of other models unused
// for staleModelAfter are dropped: after a switch of embedder the old model's
// vectors would otherwise hold their memory until the budget pushed them out.
func (b *BuiltinIndex) entry(key cacheKey) *entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for m, other := range b.models[key.workspace] {
		if m != key.model && now.Sub(other.used) > staleModelAfter {
			b.drop(other)
		}
	}
	e, ok := b.entries[key]
	if !ok {
		e = &entry{key: key, used: now}
		e.elem = b.lru.PushFront(e)
		b.entries[key] = e
		if b.models[key.workspace] == nil {
			b.models[key.workspace] = map[string]*entry{}
		}
		b.models[key.workspace][key.model] = e
		return e
	}
	e.used = now
	b.lru.MoveToFront(e.elem)
	return e
}

// staleModelAfter is how long a workspace's entry of a model it no longer
// searches stays cached.
const staleModelAfter = time.Minute

// drop removes e from the cache; b.mu is held.
func (b *BuiltinIndex) drop(e *entry) {
	b.lru.Remove(e.elem)
	delete(b.entries, e.key)
	if ms := b.models[e.key.workspace]; ms != nil {
		delete(ms, e.key.model)
		if len(ms) == 0 {
			delete(b.models, e.key.workspace)
		}
	}
	b.used -= e.bytes
}

// refresh brings e up to at least version, reading everything from one snapshot.
func (b *BuiltinIndex) refresh(ctx context.Context, e *entry, version int64) error {
	e.load.Lock()
	defer e.load.Unlock()
	e.mu.RLock()
	done := e.loaded && e.version >= version
	have := e.version
	full := !e.loaded
	e.mu.RUnlock()
	if done {
		return nil
	}
	err := pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := b.q.WithTx(tx)
		st, err := q.RetrievalStateGet(ctx, e.key.workspace)
		if err != nil {
			return err
		}
		if have < st.PrunedVersion {
			full = true // the tombstones we would need are gone
		}
		var gone []int64
		after := have
		if full {
			after = 0
		} else if gone, err = q.ChunkTombstonesSince(ctx, dbq.ChunkTombstonesSinceParams{WorkspaceID: e.key.workspace, AfterVersion: have}); err != nil {
			return err
		}
		rows, err := q.ChunkVectorLoad(ctx, dbq.ChunkVectorLoadParams{WorkspaceID: e.key.workspace, Model: e.key.model, AfterVersion: after})
		if err != nil {
			return err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if full {
			e.reset()
		}
		for _, id := range gone {
			e.remove(id)
		}
		if full && len(rows) > 0 {
			// Exact capacity: append's growth would otherwise keep up to a quarter more.
			e.dim = vectorDim(rows[0].Embedding)
			e.cols = make([][]int8, e.dim)
			for d := range e.cols {
				e.cols[d] = make([]int8, 0, len(rows))
			}
			e.ids = make([]int64, 0, len(rows))
			e.docs = make([]int32, 0, len(rows))
			e.scale = make([]float32, 0, len(rows))
		}
		for _, r := range rows {
			e.add(r)
		}
		e.loaded, e.version = true, st.Version
		return nil
	})
	if err != nil {
		return fmt.Errorf("builtin index: load: %w", err)
	}
	b.account(e)
	return nil
}

// account records e's new size and evicts the least recently used entries until
// the cache fits its budget; an entry bigger than the whole budget is evicted too
// (the query that loaded it still finishes with it).
func (b *BuiltinIndex) account(e *entry) {
	e.mu.RLock()
	size := int64(len(e.ids))*int64(e.dim) + int64(len(e.ids))*(8+4+4+16) + int64(len(e.docIDs))*64
	e.mu.RUnlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.entries[e.key]; !ok || cur != e {
		return
	}
	b.used += size - e.bytes
	e.bytes = size
	for b.used > b.budget && b.lru.Len() > 0 {
		b.drop(b.lru.Back().Value.(*entry))
	}
}

func (e *entry) reset() {
	e.dim = 0
	e.ids, e.docs, e.cols, e.scale = nil, nil, nil, nil
	e.row = map[int64]int{}
	e.docIDs, e.metas = nil, nil
	e.docOf = map[string]int32{}
}

func (e *entry) add(r dbq.ChunkVectorLoadRow) {
	if e.row == nil {
		e.reset()
	}
	n := vectorDim(r.Embedding)
	if e.dim == 0 {
		e.dim = n
	}
	if n != e.dim || n == 0 {
		return // a model's dimension changed under the same name; those vectors can't be compared
	}
	if _, ok := e.row[r.ChunkID]; ok {
		return
	}
	if e.cols == nil {
		e.cols = make([][]int8, e.dim)
	}
	d, ok := e.docOf[r.DocumentID]
	if !ok {
		d = int32(len(e.docIDs))
		e.docIDs = append(e.docIDs, r.DocumentID)
		e.metas = append(e.metas, decodeMetadata(r.Metadata))
		e.docOf[r.DocumentID] = d
	}
	v := make([]float32, e.dim)
	decodeVector(r.Embedding, v)
	normalize(v)
	codes := make([]byte, e.dim)
	scale := quantize(v, codes)
	e.row[r.ChunkID] = len(e.ids)
	e.ids = append(e.ids, r.ChunkID)
	e.docs = append(e.docs, d)
	e.scale = append(e.scale, scale)
	for j, c := range codes {
		e.cols[j] = append(e.cols[j], int8(c))
	}
}

// vector returns row i's unit vector, dequantised.
func (e *entry) vector(i int) []float32 {
	v := make([]float32, e.dim)
	s := e.scale[i]
	for d, col := range e.cols {
		v[d] = float32(col[i]) * s
	}
	return v
}

// remove drops a chunk by moving the last row into its place.
func (e *entry) remove(id int64) {
	i, ok := e.row[id]
	if !ok {
		return
	}
	last := len(e.ids) - 1
	if i != last {
		e.ids[i], e.docs[i], e.scale[i] = e.ids[last], e.docs[last], e.scale[last]
		for _, col := range e.cols {
			col[i] = col[last]
		}
		e.row[e.ids[i]] = i
	}
	e.ids, e.docs, e.scale = e.ids[:last], e.docs[:last], e.scale[:last]
	for d := range e.cols {
		e.cols[d] = e.cols[d][:last]
	}
	delete(e.row, id)
}

// parallelMin is the work (rows × query dimensions) above which a query uses every core.
const parallelMin = 1 << 20

// sparseQuery is q's non-zero dimensions and their values.
type sparseQuery struct {
	dims []int
	vals []float32
}

func sparsify(q []float32) sparseQuery {
	var s sparseQuery
	for d, x := range q {
		if x != 0 {
			s.dims = append(s.dims, d)
			s.vals = append(s.vals, x)
		}
	}
	return s
}

// search scores every row; the caller holds e.mu for reading.
func (e *entry) search(q []float32, topK int, f Filter) []Match {
	n := len(e.ids)
	if n == 0 || len(q) != e.dim || topK <= 0 {
		return nil
	}
	q = append([]float32(nil), q...)
	normalize(q)
	sq := sparsify(q)
	var pass []bool
	if len(f) > 0 {
		pass = make([]bool, len(e.metas))
		for i, m := range e.metas {
			pass[i] = f.Match(m)
		}
	}
	parts := 1
	if n*len(sq.dims) >= parallelMin {
		parts = runtime.GOMAXPROCS(0)
	}
	tops := make([]topHits, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := n*p/parts, n*(p+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			tops[p] = e.scan(sq, lo, hi, topK, pass)
		}()
	}
	wg.Wait()
	all := tops[0]
	for _, t := range tops[1:] {
		for _, h := range t.hits {
			all.offer(h.score, h.row)
		}
	}
	sort.Slice(all.hits, func(i, j int) bool {
		if all.hits[i].score != all.hits[j].score {
			return all.hits[i].score > all.hits[j].score
		}
		return e.ids[all.hits[i].row] < e.ids[all.hits[j].row]
	})
	out := make([]Match, len(all.hits))
	for i, h := range all.hits {
		out[i] = Match{ID: strconv.FormatInt(e.ids[h.row], 10), DocumentID: e.docIDs[e.docs[h.row]], Score: h.score}
	}
	return out
}

// scan is the hot loop: rows [lo, hi) accumulate the query's dimensions one at a
// time, each a sequential pass over one column, so the work is the query's
// non-zero dimensions times the rows, not the full dimension.
func (e *entry) scan(q sparseQuery, lo, hi, k int, pass []bool) topHits {
	t := topHits{k: k, hits: make([]hit, 0, k)}
	acc := make([]float32, hi-lo)
	for j, d := range q.dims {
		axpy(acc, e.cols[d][lo:hi], q.vals[j])
	}
	scale := e.scale[lo:hi]
	for i, s := range acc {
		if pass != nil && !pass[e.docs[lo+i]] {
			continue
		}
		s *= scale[i]
		if len(t.hits) == k && s <= t.min {
			continue
		}
		t.offer(s, lo+i)
	}
	return t
}

// score returns q's similarity to each of rows; the caller holds e.mu for reading.
func (e *entry) score(q []float32, rows []int) []float32 {
	q = append([]float32(nil), q...)
	normalize(q)
	sq := sparsify(q)
	out := make([]float32, len(rows))
	for j, d := range sq.dims {
		col, w := e.cols[d], sq.vals[j]
		for i, r := range rows {
			out[i] += w * float32(col[r])
		}
	}
	for i, r := range rows {
		out[i] *= e.scale[r]
	}
	return out
}

// axpy adds w·x to acc, unrolled by four with the bounds checks hoisted.
func axpy(acc []float32, x []int8, w float32) {
	acc = acc[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a := acc[i : i+4 : i+4]
		b := x[i : i+4 : i+4]
		a[0] += w * float32(b[0])
		a[1] += w * float32(b[1])
		a[2] += w * float32(b[2])
		a[3] += w * float32(b[3])
	}
	for ; i < len(x); i++ {
		acc[i] += w * float32(x[i])
	}
}

type hit struct {
	score float32
	row   int
}

// topHits keeps the k best hits seen; k is small, so a linear scan for the weakest
// beats a heap.
type topHits struct {
	k    int
	hits []hit
	min  float32
	at   int
}

func (t *topHits) offer(s float32, row int) {
	if len(t.hits) < t.k {
		t.hits = append(t.hits, hit{s, row})
		if len(t.hits) == t.k {
			t.findMin()
		}
		return
	}
	if s <= t.min {
		return
	}
	t.hits[t.at] = hit{s, row}
	t.findMin()
}

func (t *topHits) findMin() {
	t.at, t.min = 0, t.hits[0].score
	for i, h := range t.hits {
		if h.score < t.min {
			t.at, t.min = i, h.score
		}
	}
}

// dot is the inner product of two equal-length vectors, unrolled by eight with
// independent sums so the CPU can overlap the multiplies. Over a whole workspace
// the scan is bound by memory bandwidth, not arithmetic: AVX2 assembly measured no
// faster at 100,000 vectors, so plain Go it is.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// normalize scales v to unit length in place; the zero vector stays zero.
func normalize(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 || math.Abs(n-1) < 1e-6 {
		return
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= inv
	}
}
