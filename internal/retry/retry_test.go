package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/retry"
)

var (
	errTransient = errors.New("transient")
	errPermanent = errors.New("permanent")
)

// run calls Do with a call failing with errs in turn (then succeeding) and returns
// the number of calls, the waits taken and Do's error.
func run(t *testing.T, p retry.Policy, after time.Duration, errs ...error) (int, []time.Duration, error) {
	t.Helper()
	var waits []time.Duration
	p.Sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	calls := 0
	err := p.Do(context.Background(), func(context.Context) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, func(err error) (bool, time.Duration) { return errors.Is(err, errTransient), after })
	return calls, waits, err
}

func TestDo(t *testing.T) {
	p := retry.Policy{Attempts: 4, Base: 100 * time.Millisecond, Max: 10 * time.Second}

	t.Run("SucceedsAfterTransientFailures", func(t *testing.T) {
		calls, waits, err := run(t, p, 0, errTransient, errTransient)
		require.NoError(t, err)
		require.Equal(t, 3, calls)
		require.Len(t, waits, 2)
		require.LessOrEqual(t, waits[0], 100*time.Millisecond)
		require.LessOrEqual(t, waits[1], 200*time.Millisecond, "ceiling doubles")
		for _, w := range waits {
			require.Positive(t, w)
		}
	})

	t.Run("StopsOnAPermanentFailure", func(t *testing.T) {
		calls, _, err := run(t, p, 0, errTransient, errPermanent, errTransient)
		require.ErrorIs(t, err, errPermanent)
		require.Equal(t, 2, calls)
	})

	t.Run("GivesUpAfterAttempts", func(t *testing.T) {
		calls, waits, err := run(t, p, 0, errTransient, errTransient, errTransient, errTransient, errTransient)
		require.ErrorIs(t, err, errTransient)
		require.Equal(t, 4, calls)
		require.Len(t, waits, 3)
	})

	t.Run("WaitsAtLeastAsLongAsAsked", func(t *testing.T) {
		_, waits, _ := run(t, p, 3*time.Second, errTransient)
		require.Equal(t, []time.Duration{3 * time.Second}, waits)
	})

	t.Run("AskedToWaitBeyondMaxGivesUp", func(t *testing.T) {
		calls, waits, err := run(t, p, time.Minute, errTransient)
		require.ErrorIs(t, err, errTransient)
		require.Equal(t, 1, calls)
		require.Empty(t, waits)
	})

	t.Run("BackoffCappedByMax", func(t *testing.T) {
		p := retry.Policy{Attempts: 40, Base: time.Second, Max: 2 * time.Second}
		errs := make([]error, 39)
		for i := range errs {
			errs[i] = errTransient
		}
		_, waits, _ := run(t, p, 0, errs...)
		for _, w := range waits {
			require.LessOrEqual(t, w, 2*time.Second)
		}
	})

	t.Run("StopsWhenTheContextEnds", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := retry.Policy{Attempts: 5, Base: time.Hour}.Do(ctx, func(context.Context) error {
			calls++
			cancel()
			return errTransient
		}, func(error) (bool, time.Duration) { return true, 0 })
		require.ErrorIs(t, err, errTransient)
		require.Equal(t, 1, calls)
	})

	t.Run("EachCallHasItsOwnTimeout", func(t *testing.T) {
		calls := 0
		err := retry.Policy{Attempts: 2, Timeout: 10 * time.Millisecond, Sleep: func(context.Context, time.Duration) error { return nil }}.Do(
			context.Background(), func(ctx context.Context) error {
				calls++
				<-ctx.Done()
				require.ErrorIs(t, context.Cause(ctx), retry.ErrTimeout)
				require.False(t, retry.CallerGone(ctx), "a timed out attempt is the service's fault")
				return ctx.Err()
			}, func(error) (bool, time.Duration) { return true, 0 })
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 2, calls)
	})
}

func TestCallerGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	require.False(t, retry.CallerGone(ctx))
	cancel()
	require.True(t, retry.CallerGone(ctx))
}
