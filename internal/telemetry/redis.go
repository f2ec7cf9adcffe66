package telemetry

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
)

// RedisHook returns a go-redis hook that records every command (and pipeline) as a
// call to Redis: metrics by command, a span carrying the command's name only (never
// its keys or values), and Redis's last failure.
func (t *Telemetry) RedisHook() redis.Hook { return redisHook{t} }

type redisHook struct{ t *Telemetry }

// DialHook passes dials through; a failed dial fails the command that needed it.
func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook wraps one command.
func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := strings.ToLower(cmd.Name())
		ctx, end := h.t.Call(ctx, Redis, name, attribute.String("db.system", "redis"), attribute.String("db.operation.name", name))
		err := next(ctx, cmd)
		end(redisFailure(err))
		return err
	}
}

// ProcessPipelineHook wraps a pipeline as one call.
func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, end := h.t.Call(ctx, Redis, "pipeline", attribute.String("db.system", "redis"), attribute.Int("db.operation.batch.size", len(cmds)))
		err := next(ctx, cmds)
		end(redisFailure(err))
		return err
	}
}

// redisFailure is err unless it is an answer: redis.Nil ("no such key"), or
// NOSCRIPT, after which go-redis sends the script itself.
func redisFailure(err error) error {
	if errors.Is(err, redis.Nil) || err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return nil
	}
	return err
}
