// Package retry calls a remote service again after transient failures, waiting with
// capped exponential backoff and full jitter, or as long as the service asked.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// ErrTimeout is the cause (context.Cause) of a context that ended because an attempt
// or a stream took longer than its caller allowed, as opposed to the caller going away.
var ErrTimeout = errors.New("timed out")

// CallerGone reports whether ctx ended for any reason but ErrTimeout: then nobody
// waits for the answer, and a failure is not the remote service's.
func CallerGone(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrTimeout)
}

// Policy says how often and how patiently to retry.
type Policy struct {
	// Attempts is the number of calls in all, the first one included (at least 1).
	Attempts int
	// Base is the backoff ceiling before the second call; it doubles per attempt.
	Base time.Duration
	// Timeout limits each call, with ErrTimeout as its context's cause; 0 means none.
	Timeout time.Duration
	// Max caps one wait. A service asking for a longer wait ends the retries: the
	// caller is better served by an error carrying that Retry-After than by hanging.
	Max time.Duration
	// Sleep waits for d or until ctx is done; nil means a real timer. Tests replace it
	// to see the waits without taking them.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, if set, is told about each failed call that will be retried.
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Default is a policy fit for an interactive request: four calls within about ten seconds.
var Default = Policy{Attempts: 4, Base: 250 * time.Millisecond, Max: 8 * time.Second}

// Do calls call until it succeeds, fails for good, or p.Attempts calls were made, and
// returns the last error. transient reports whether an error is worth another call and
// how long the service asked to wait (0 when it did not say). Do stops when ctx is done.
func (p Policy) Do(ctx context.Context, call func(ctx context.Context) error, transient func(err error) (retry bool, after time.Duration)) error {
	attempts := max(p.Attempts, 1)
	for i := 1; ; i++ {
		err := p.call(ctx, call)
		if err == nil {
			return nil
		}
		if i >= attempts || ctx.Err() != nil {
			return err
		}
		retry, after := transient(err)
		if !retry || (p.Max > 0 && after > p.Max) {
			return err
		}
		wait := max(p.backoff(i), after)
		if p.OnRetry != nil {
			p.OnRetry(i, err, wait)
		}
		if p.sleep(ctx, wait) != nil {
			return err
		}
	}
}

func (p Policy) call(ctx context.Context, call func(ctx context.Context) error) error {
	if p.Timeout <= 0 {
		return call(ctx)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.Timeout, ErrTimeout)
	defer cancel()
	return call(ctx)
}

// backoff is "full jitter": a uniform wait below an exponentially growing ceiling, so
// that many clients rejected together do not come back together.
func (p Policy) backoff(attempt int) time.Duration {
	ceiling := p.Base << min(attempt-1, 30)
	if p.Max > 0 && (ceiling > p.Max || ceiling <= 0) {
		ceiling = p.Max
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling) + 1
}

func (p Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
