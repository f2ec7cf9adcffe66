package openai_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/openai"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/retry"
)

const (
	serverKey = "sk-server-0123456789abcdefSECRET"
	callerKey = "sk-caller-9876543210fedcbaSECRET"
)

type bundle struct {
	srv    *openaitest.Server
	client *openai.Client
	logs   *syncBuffer
	// waits are the backoffs the client chose; the tests never sleep through them.
	waits *[]time.Duration
}

func setup(t *testing.T, cfg config.OpenAI, opts ...openai.Option) bundle {
	t.Helper()
	srv := openaitest.Start(t, serverKey, callerKey)
	if cfg.APIKey == "" {
		cfg.APIKey = serverKey
	}
	cfg.BaseURL = srv.BaseURL()
	if cfg.EmbeddingModel == "" {
		cfg.EmbeddingModel = "text-embedding-3-small"
	}
	if cfg.ChatModel == "" {
		cfg.ChatModel = "gpt-4o-mini"
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	logs := &syncBuffer{}
	policy := retry.Policy{Attempts: 4, Base: time.Millisecond, Max: 30 * time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			*waits = append(*waits, d)
			return ctx.Err()
		}}
	opts = append([]openai.Option{
		openai.WithRetry(policy),
		openai.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}, opts...)
	return bundle{srv: srv, client: openai.New(cfg, opts...), logs: logs, waits: waits}
}

func TestEmbeddings(t *testing.T) {
	ctx := context.Background()

	t.Run("VectorsInOrderFromTheConfiguredModel", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		texts := []string{"the quick brown fox", "jumps over", "the lazy dog"}
		vs, err := b.client.Embedder("").Embed(ctx, texts)
		require.NoError(t, err)
		require.Len(t, vs, len(texts))
		for i, text := range texts {
			require.Equal(t, openaitest.Embed(text, 64), vs[i], "vector %d", i)
		}
		reqs := b.srv.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "text-embedding-3-small", reqs[0].Model)
		require.Equal(t, texts, reqs[0].Inputs)
		require.Zero(t, reqs[0].Dimensions)
		require.Equal(t, "openai/text-embedding-3-small", b.client.Embedder("").Model())
	})

	t.Run("DimensionsAskedForAndNamedInTheModel", func(t *testing.T) {
		b := setup(t, config.OpenAI{EmbeddingModel: "text-embedding-3-large", EmbeddingDimensions: 12})
		e := b.client.Embedder("")
		vs, err := e.Embed(ctx, []string{"hello"})
		require.NoError(t, err)
		require.Len(t, vs[0], 12)
		require.Equal(t, 12, b.srv.Requests()[0].Dimensions)
		require.Equal(t, "openai/text-embedding-3-large@12", e.Model())
	})

	t.Run("BatchesWithinTheInputCountLimit", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		texts := make([]string, openaitest.MaxInputs+100)
		for i := range texts {
			texts[i] = "text number " + strings.Repeat("x", i%7)
		}
		vs, err := b.client.Embedder("").Embed(ctx, texts)
		require.NoError(t, err)
		require.Len(t, vs, len(texts))
		require.Equal(t, openaitest.Embed(texts[len(texts)-1], 64), vs[len(vs)-1])
		var sent []string
		for _, r := range b.srv.Requests() {
			require.LessOrEqual(t, len(r.Inputs), 512)
			sent = append(sent, r.Inputs...)
		}
		require.Equal(t, texts, sent, "every text sent once, in order")
	})

	t.Run("BatchesWithinTheByteLimit", func(t *testing.T) {
		b := setup(t, config.OpenAI{}, openai.WithBatchLimits(100, 1000))
		texts := make([]string, 10)
		for i := range texts {
			texts[i] = strings.Repeat("word ", 60) // 300 bytes
		}
		_, err := b.client.Embedder("").Embed(ctx, texts)
		require.NoError(t, err)
		reqs := b.srv.Requests()
		require.Len(t, reqs, 4, "3+3+3+1 texts of 300 bytes under 1000 bytes a request")
	})

	t.Run("OversizedAndEmptyInputsStillEmbed", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		huge := strings.Repeat("é", 20_000) // 40,000 bytes, more than one input may hold
		vs, err := b.client.Embedder("").Embed(ctx, []string{huge, ""})
		require.NoError(t, err)
		require.Len(t, vs, 2)
		in := b.srv.Requests()[0].Inputs
		require.True(t, utf8.ValidString(in[0]), "cut at a rune boundary")
		require.Less(t, len(in[0]), len(huge))
		require.True(t, strings.HasPrefix(huge, in[0]))
		require.Equal(t, " ", in[1])
	})
}

func TestChat(t *testing.T) {
	ctx := context.Background()
	msgs := []retrieval.ChatMessage{
		{Role: "system", Content: "Answer from the sources."},
		{Role: "user", Content: "What is a cairn?"},
	}

	t.Run("CompleteReturnsTheAnswer", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Reply = func(ms []openaitest.Message) string { return "A pile of stones [1]. You asked: " + ms[1].Content }
		chat := b.client.Chat("")
		got, err := chat.Complete(ctx, msgs)
		require.NoError(t, err)
		require.Equal(t, "A pile of stones [1]. You asked: What is a cairn?", got)
		req := b.srv.Requests()[0]
		require.Equal(t, "gpt-4o-mini", req.Model)
		require.Equal(t, "gpt-4o-mini", chat.Model())
		require.Equal(t, []openaitest.Message{{Role: "system", Content: "Answer from the sources."}, {Role: "user", Content: "What is a cairn?"}}, req.Messages)
		require.False(t, req.Stream)
	})

	t.Run("StreamDeliversDeltasUntilDone", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Reply = func([]openaitest.Message) string { return "A cairn is a pile of stones [1]." }
		var deltas []string
		err := b.client.Chat("").Stream(ctx, msgs, func(d string) error {
			deltas = append(deltas, d)
			return nil
		})
		require.NoError(t, err)
		require.Greater(t, len(deltas), 1, "answer arrives in pieces")
		require.Equal(t, "A cairn is a pile of stones [1].", strings.Join(deltas, ""))
		require.True(t, b.srv.Requests()[0].Stream)
	})

	t.Run("StreamStopsWhenTheCallbackFails", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		stop := errors.New("client went away")
		n := 0
		err := b.client.Chat("").Stream(ctx, msgs, func(string) error { n++; return stop })
		require.ErrorIs(t, err, stop)
		require.Equal(t, 1, n)
	})

	t.Run("StreamOpeningIsRetried", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 429, Header: http.Header{"Retry-After": {"2"}}})
		var got strings.Builder
		err := b.client.Chat("").Stream(ctx, msgs, func(d string) error { got.WriteString(d); return nil })
		require.NoError(t, err)
		require.Equal(t, "According to [1], this is the answer.", got.String())
		require.Len(t, b.srv.Requests(), 2)
	})

	t.Run("HungStreamOpeningIsRetried", func(t *testing.T) {
		b := setup(t, config.OpenAI{}, openai.WithTimeouts(200*time.Millisecond, time.Minute))
		b.srv.Fail(openaitest.Failure{Hang: true})
		var got strings.Builder
		err := b.client.Chat("").Stream(ctx, msgs, func(d string) error { got.WriteString(d); return nil })
		require.NoError(t, err)
		require.Equal(t, "According to [1], this is the answer.", got.String())
		require.Len(t, b.srv.Requests(), 2)
	})

	t.Run("StreamOutageIs503", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		for range 4 {
			b.srv.Fail(openaitest.Failure{Status: 502})
		}
		err := b.client.Chat("").Stream(ctx, msgs, func(string) error { return nil })
		requireUnavailable(t, err)
	})
}

func TestRetries(t *testing.T) {
	ctx := context.Background()

	t.Run("RateLimitedThenSuccessHonoursRetryAfter", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 429, Header: http.Header{"Retry-After": {"7"}}})
		vs, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.NoError(t, err)
		require.Len(t, vs, 1)
		require.Len(t, b.srv.Requests(), 2)
		require.Len(t, *b.waits, 1)
		require.GreaterOrEqual(t, (*b.waits)[0], 7*time.Second, "waited as long as asked")
	})

	t.Run("RetryAfterMsIsRead", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 429, Header: http.Header{"Retry-After-Ms": {"1500"}}})
		_, err := b.client.Chat("").Complete(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}})
		require.NoError(t, err)
		require.GreaterOrEqual(t, (*b.waits)[0], 1500*time.Millisecond)
	})

	t.Run("ServerErrorsExhaustRetriesAs503", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		for range 4 {
			b.srv.Fail(openaitest.Failure{Status: 500})
		}
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		e := requireUnavailable(t, err)
		require.Equal(t, 5, e.RetryAfter)
		require.Len(t, b.srv.Requests(), 4)
		require.Len(t, *b.waits, 3)
		for i := 1; i < len(*b.waits); i++ {
			require.LessOrEqual(t, (*b.waits)[i], time.Millisecond<<i, "backoff %d within its ceiling", i)
		}
	})

	t.Run("RetryAfterOfTheLastAnswerIsPassedOn", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		for range 4 {
			b.srv.Fail(openaitest.Failure{Status: 503, Header: http.Header{"Retry-After": {"3"}}})
		}
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.Equal(t, 3, requireUnavailable(t, err).RetryAfter)
	})

	t.Run("TooLongRetryAfterGivesUpAtOnce", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 429, Header: http.Header{"Retry-After": {"120"}}})
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.Equal(t, 120, requireUnavailable(t, err).RetryAfter)
		require.Len(t, b.srv.Requests(), 1)
	})

	t.Run("HungRequestTimesOutAndIsRetried", func(t *testing.T) {
		b := setup(t, config.OpenAI{}, openai.WithTimeouts(200*time.Millisecond, time.Minute))
		b.srv.Fail(openaitest.Failure{Hang: true})
		vs, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.NoError(t, err)
		require.Len(t, vs, 1)
		require.Len(t, b.srv.Requests(), 2)
	})

	t.Run("TimeoutsExhaustRetriesAs503", func(t *testing.T) {
		b := setup(t, config.OpenAI{}, openai.WithTimeouts(100*time.Millisecond, time.Minute))
		for range 4 {
			b.srv.Fail(openaitest.Failure{Hang: true})
		}
		_, err := b.client.Chat("").Complete(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}})
		requireUnavailable(t, err)
	})

	t.Run("BadRequestIsNotRetried", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 400, Message: "bad"})
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.Error(t, err)
		require.Equal(t, apperr.Internal, apperr.CodeOf(err), "a request Cairn built wrong is its own bug")
		require.Len(t, b.srv.Requests(), 1)
	})

	t.Run("CallerCancellingIsNotAnOutage", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.ErrorIs(t, err, context.Canceled)
		require.Nil(t, apperr.As(err))
	})
}

func TestKeys(t *testing.T) {
	ctx := context.Background()

	t.Run("CallerKeyIsSentInsteadOfTheServers", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		_, err := b.client.Embedder(callerKey).Embed(ctx, []string{"hello"})
		require.NoError(t, err)
		_, err = b.client.Chat(callerKey).Complete(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}})
		require.NoError(t, err)
		err = b.client.Chat(callerKey).Stream(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}}, func(string) error { return nil })
		require.NoError(t, err)
		reqs := b.srv.Requests()
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			require.Equal(t, "Bearer "+callerKey, r.Authorization, r.Path)
		}
		_, err = b.client.Embedder("").Embed(ctx, []string{"hello"})
		require.NoError(t, err)
		require.Equal(t, "Bearer "+serverKey, b.srv.Requests()[3].Authorization, "no key given: the server's")
	})

	t.Run("RejectedCallerKeyIs400NamingTheHeader", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		const bad = "sk-wrong-caller-key-SECRET-123456"
		_, err := b.client.Embedder(bad).Embed(ctx, []string{"hello"})
		e := apperr.As(err)
		require.NotNil(t, e, "%v", err)
		require.Equal(t, apperr.Invalid, e.Code)
		require.Equal(t, http.StatusBadRequest, e.Code.Status())
		require.Equal(t, "OpenAI-API-Key", e.Field)
		require.Contains(t, e.Message, "OpenAI-API-Key")
		require.Len(t, b.srv.Requests(), 1, "a rejected key is not retried")
		requireNoKey(t, b, err, bad)

		err = b.client.Chat(bad).Stream(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}}, func(string) error { return nil })
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
		requireNoKey(t, b, err, bad)
	})

	t.Run("CallerKeyOutOfQuotaIs400", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		b.srv.Fail(openaitest.Failure{Status: 429, Code: "insufficient_quota", Message: "You exceeded your current quota."})
		_, err := b.client.Chat(callerKey).Complete(ctx, []retrieval.ChatMessage{{Role: "user", Content: "hi"}})
		e := apperr.As(err)
		require.NotNil(t, e)
		require.Equal(t, apperr.Invalid, e.Code)
		require.Equal(t, "OpenAI-API-Key", e.Field)
		require.Len(t, b.srv.Requests(), 1, "an exhausted quota is not retried")
	})

	t.Run("RejectedServerKeyIs503", func(t *testing.T) {
		const wrong = "sk-server-key-the-operator-mistyped"
		b := setup(t, config.OpenAI{APIKey: wrong})
		_, err := b.client.Embedder("").Embed(ctx, []string{"hello"})
		requireUnavailable(t, err)
		requireNoKey(t, b, err, wrong)
	})

	t.Run("KeyNeverInErrorsOrLogs", func(t *testing.T) {
		b := setup(t, config.OpenAI{})
		// The fake quotes the key in every error message; retries log those errors.
		for range 4 {
			b.srv.Fail(openaitest.Failure{Status: 500})
		}
		_, err := b.client.Embedder(callerKey).Embed(ctx, []string{"hello"})
		requireUnavailable(t, err)
		require.Contains(t, b.logs.String(), "openai: retrying", "retries were logged")
		require.Contains(t, err.Error(), "[redacted]", "the cause is kept, without the key")
		requireNoKey(t, b, err, callerKey)

		for range 4 {
			b.srv.Fail(openaitest.Failure{Status: 500})
		}
		_, err = b.client.Embedder("").Embed(ctx, []string{"hello"})
		requireUnavailable(t, err)
		requireNoKey(t, b, err, serverKey)
	})
}

func requireUnavailable(t *testing.T, err error) *apperr.Error {
	t.Helper()
	e := apperr.As(err)
	require.NotNil(t, e, "want an apperr, got %v", err)
	require.Equal(t, apperr.Unavailable, e.Code, "%v", err)
	require.Equal(t, http.StatusServiceUnavailable, e.Code.Status())
	require.Positive(t, e.RetryAfter)
	return e
}

func requireNoKey(t *testing.T, b bundle, err error, key string) {
	t.Helper()
	require.NotContains(t, err.Error(), key)
	if e := apperr.As(err); e != nil {
		require.NotContains(t, e.Message, key)
		if e.Err != nil {
			require.NotContains(t, e.Err.Error(), key)
		}
	}
	require.NotContains(t, b.logs.String(), key)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
