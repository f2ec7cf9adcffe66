// Package querycache keeps query embeddings in Redis, shared by every replica, so
// that the embedding service is paid once per distinct query and model rather than
// once per replica and per repeat.
package querycache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Prefix starts every key; v1 is the value's format (little-endian float32s).
const Prefix = "cairn:qemb:v1:"

// pause is how long the cache stays out of the way after Redis fails: searches go
// straight to the embedder instead of each waiting for Redis's timeout first.
const pause = 5 * time.Second

// Redis is a retrieval.QueryCache in Redis. Its keys are the scope (the model) and
// the SHA-256 of the text, never the text itself; values are the vector, 4 bytes a
// dimension, expiring after the TTL. Every Redis failure is a miss.
type Redis struct {
	rdb *redis.Client
	ttl time.Duration
	log *slog.Logger

	downUntil atomic.Int64 // unix nanoseconds; Redis is skipped until then
	results   *prometheus.CounterVec
}

// New returns the cache on rdb whose entries live for ttl. reg, when set, receives
// cairn_query_embedding_cache_total{result="hit|miss|error|skipped"}.
func New(rdb *redis.Client, ttl time.Duration, log *slog.Logger, reg prometheus.Registerer) *Redis {
	r := &Redis{rdb: rdb, ttl: ttl, log: log,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_query_embedding_cache_total",
			Help: "Query embedding cache lookups by result: hit, miss, error (Redis failed: embedded instead) or skipped (Redis failed recently).",
		}, []string{"result"}),
	}
	for _, res := range []string{"hit", "miss", "error", "skipped"} {
		r.results.WithLabelValues(res)
	}
	if reg != nil {
		reg.MustRegister(r.results)
	}
	return r
}

// Key is the Redis key of text's vector in scope.
func Key(scope, text string) string {
	sum := sha256.Sum256([]byte(text))
	return Prefix + scope + ":" + hex.EncodeToString(sum[:])
}

// Get returns the cached vector of text in scope.
func (r *Redis) Get(ctx context.Context, scope, text string) ([]float32, bool) {
	if r.skipping() {
		r.results.WithLabelValues("skipped").Inc()
		return nil, false
	}
	b, err := r.rdb.Get(ctx, Key(scope, text)).Bytes()
	if errors.Is(err, redis.Nil) {
		r.results.WithLabelValues("miss").Inc()
		return nil, false
	}
	if err != nil {
		r.failed(ctx, err)
		return nil, false
	}
	v, ok := Decode(b)
	if !ok {
		r.results.WithLabelValues("miss").Inc() // not ours, or truncated: embed again
		return nil, false
	}
	r.results.WithLabelValues("hit").Inc()
	return v, true
}

// Put stores text's vector in scope.
func (r *Redis) Put(ctx context.Context, scope, text string, v []float32) {
	if len(v) == 0 || r.skipping() {
		return
	}
	if err := r.rdb.Set(ctx, Key(scope, text), Encode(v), r.ttl).Err(); err != nil {
		r.failed(ctx, err)
	}
}

func (r *Redis) skipping() bool { return time.Now().UnixNano() < r.downUntil.Load() }

// failed records a Redis failure and pauses the cache, unless the request itself
// was cancelled (that says nothing about Redis).
func (r *Redis) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	r.results.WithLabelValues("error").Inc()
	if r.downUntil.Swap(time.Now().Add(pause).UnixNano()) < time.Now().UnixNano() {
		r.log.Warn("query embedding cache: Redis failed; embedding without it for a while", "pause", pause.String(), "err", err)
	}
}

// Encode packs a vector as little-endian float32s.
func Encode(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// Decode unpacks Encode's bytes; ok is false when they cannot be a vector.
func Decode(b []byte) (v []float32, ok bool) {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil, false
	}
	v = make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, true
}
