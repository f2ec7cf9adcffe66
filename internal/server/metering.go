package server

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/metering"
)

// openRedis connects to REDIS_URL, when set, for everything Redis serves: shared
// rate limits and the query embedding cache. A Redis that does not answer at start
// is only logged: both fall back until it does.
func (s *Server) openRedis() error {
	if s.cfg.RedisURL == "" {
		return nil
	}
	opts, err := redis.ParseURL(s.cfg.RedisURL)
	if err != nil {
		return errors.New("server: REDIS_URL " + config.RedactURL(s.cfg.RedisURL) + " is not a valid Redis URL")
	}
	// Short timeouts: a rate-limit check that waits on a sick Redis delays every
	// request, while falling back to in-process limits costs little (and a query
	// embedding cache miss costs one embedding).
	opts.DialTimeout = 250 * time.Millisecond
	opts.ReadTimeout = 250 * time.Millisecond
	opts.WriteTimeout = 250 * time.Millisecond
	opts.PoolTimeout = 500 * time.Millisecond
	opts.MaxRetries = 1
	rdb := redis.NewClient(opts)
	rdb.AddHook(s.tel.RedisHook())
	s.redis = rdb
	s.closers = append(s.closers, func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		s.log.Warn("Redis not reachable at start; rate limits stay in process until it is", "redis", config.RedactURL(s.cfg.RedisURL), "err", err)
	}
	return nil
}

// newMeter builds the metering service (Redis-backed rate limits when openRedis
// connected) and registers its NOTIFY subscriptions and workers. The usage flusher
// is a worker, so Close writes every recorded event before the pool closes.
func (s *Server) newMeter(outbox *mail.Outbox) *metering.Service {
	m := metering.New(metering.Deps{
		Pool: s.pool, Plans: s.cfg.Plans, Log: s.log, Redis: s.redis, Outbox: outbox,
		BaseURL: s.cfg.BaseURL, Registerer: s.registry,
		// s.retrieval is built after the meter, but before any request arrives.
		Documents: func(ctx context.Context, ws uuid.UUID) (int64, error) {
			n, err := s.retrieval.DocumentCount(ctx, ws)
			return int64(n), err
		},
	})
	m.Subscribe(s.listener)
	s.workers = append(s.workers, m.RunFlusher, m.RunJanitor)
	return m
}

// rateLimitMode says where rate limits are decided, for /health/detailed.
func (s *Server) rateLimitMode() string {
	switch {
	case s.cfg.RedisURL == "":
		return "in process"
	case s.meter.RedisDown():
		return "in process (Redis unavailable)"
	}
	return "redis"
}
