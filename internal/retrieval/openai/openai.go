// Package openai embeds texts and generates answers through OpenAI's API, or any server
// that speaks it (OPENAI_BASE_URL), with batching, retries and timeouts, and maps its
// failures to Cairn's errors: an outage is a 503 with Retry-After, a caller's rejected
// key is the caller's 400.
package openai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retry"
	"github.com/cairn-dev/cairn/internal/telemetry"
)

// KeyHeader is the request header through which a caller brings their own OpenAI key.
const KeyHeader = "OpenAI-API-Key"

// OpenAI's documented limits for one embeddings request are 2,048 inputs, 8,192
// tokens per input and 300,000 tokens in all. Cairn has no tokenizer, so it counts
// bytes, which are never fewer than tokens for the text it sends.
const (
	defaultBatchInputs = 512
	defaultBatchBytes  = 250_000
	// maxInputBytes keeps one input under 8,192 tokens even for scripts that take a
	// token per character (3 bytes in UTF-8); chunks are far shorter, so only an
	// oversized query is ever cut.
	maxInputBytes = 16_000
	// defaultRetryAfter is what a 503 advises when OpenAI did not say.
	defaultRetryAfter = 5
)

// Client holds the configuration and HTTP connections shared by every caller; it
// hands out an Embedder and a ChatModel bound to one API key.
type Client struct {
	cfg           config.OpenAI
	http          *http.Client
	policy        retry.Policy
	timeout       time.Duration
	streamTimeout time.Duration
	batchInputs   int
	batchBytes    int
	log           *slog.Logger
	// endpointHTTP reaches workspaces' own endpoints: public addresses only, unless
	// private ones are allowed (CUSTOM_EMBEDDER_ALLOW_PRIVATE).
	endpointHTTP *http.Client
	allowPrivate bool
	tel          *telemetry.Telemetry
}

// Option changes a Client's defaults.
type Option func(*Client)

// WithHTTPClient sends requests through h instead of a client of the package's own.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetry replaces the retry policy (retry.Default).
func WithRetry(p retry.Policy) Option { return func(c *Client) { c.policy = p } }

// WithTimeouts sets the limit of one embeddings or chat call attempt (30 s) and of a
// whole streamed answer (3 min).
func WithTimeouts(call, stream time.Duration) Option {
	return func(c *Client) { c.timeout, c.streamTimeout = call, stream }
}

// WithBatchLimits caps the inputs and the bytes of text in one embeddings request.
func WithBatchLimits(inputs, bytes int) Option {
	return func(c *Client) { c.batchInputs, c.batchBytes = inputs, bytes }
}

// WithPrivateEndpoints lets workspaces' own endpoints be on loopback and private
// networks (a self-hosted model next to Cairn; tests).
func WithPrivateEndpoints(allow bool) Option { return func(c *Client) { c.allowPrivate = allow } }

// WithTelemetry records each call to the server's OpenAI (metrics, spans, the last
// failure for health reports); calls to workspaces' own endpoints are spans only.
func WithTelemetry(t *telemetry.Telemetry) Option { return func(c *Client) { c.tel = t } }

// WithLogger logs retries to l (at warn level); nothing is logged otherwise.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// New returns a Client for cfg. An empty cfg.BaseURL means OpenAI's own API.
func New(cfg config.OpenAI, opts ...Option) *Client {
	c := &Client{
		cfg:           cfg,
		policy:        retry.Default,
		timeout:       30 * time.Second,
		streamTimeout: 3 * time.Minute,
		batchInputs:   defaultBatchInputs,
		batchBytes:    defaultBatchBytes,
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// A server that accepts a streamed answer's request and never answers would
		// hold it until the stream's overall timeout; this lets the attempt be retried.
		t.ResponseHeaderTimeout = c.timeout
		c.http = &http.Client{Transport: t}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = c.timeout
	t.Proxy = nil // the address checked is the one dialled
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !c.allowPrivate {
		dialer.Control = publicOnly
	}
	t.DialContext = dialer.DialContext
	c.endpointHTTP = &http.Client{
		Transport: t,
		// A redirect could lead anywhere; an embeddings API has no reason to send one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// sharedAddressSpace is carrier-grade NAT's range (RFC 6598): not public either.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicOnly refuses to connect a workspace's endpoint to this machine or a
// private network: a workspace must not reach Cairn's own neighbours through it.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("openai: endpoint address %q: %w", host, err)
	}
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		sharedAddressSpace.Contains(ip) {
		return fmt.Errorf("openai: endpoint address %s is not public", ip)
	}
	return nil
}

// Endpoint returns the embedder of a workspace's own OpenAI-compatible endpoint:
// baseURL, model, dims (0: the model's own) and apiKey, whose vectors are stored
// as name. Its failures are the workspace's endpoint's, never the server's key's.
func (c *Client) Endpoint(baseURL, model string, dims int, apiKey, name string) retrieval.Embedder {
	cc := *c
	cc.cfg = config.OpenAI{APIKey: apiKey, BaseURL: baseURL, EmbeddingModel: model, EmbeddingDimensions: dims}
	cc.http = c.endpointHTTP
	conn := cc.conn("")
	conn.endpoint = true
	return &embedder{conn: conn, name: name}
}

// Embedder returns an embedder that calls OpenAI with apiKey: the caller's own key
// from the OpenAI-API-Key header, or "" for the server's. The key lives only as long
// as the returned value; it is never stored or logged.
func (c *Client) Embedder(apiKey string) retrieval.Embedder {
	return &embedder{conn: c.conn(apiKey)}
}

// Chat returns a chat model that calls OpenAI with apiKey, as Embedder does.
func (c *Client) Chat(apiKey string) retrieval.ChatModel {
	return &chat{conn: c.conn(apiKey)}
}

// Ping lists the models the server's key may use, once and without retries, to
// tell whether OpenAI answers (health reports). Its error names no key.
func (c *Client) Ping(ctx context.Context) error {
	cn := c.conn("")
	ctx, end := c.tel.Call(ctx, telemetry.OpenAI, "models")
	_, err := cn.api.ListModels(ctx)
	if err != nil {
		err = errors.New(cn.redact(err.Error()))
	}
	end(err)
	return err
}

// conn is a Client bound to one key.
type conn struct {
	*Client
	api       *goopenai.Client
	key       string
	callerKey bool
	endpoint  bool // a workspace's own endpoint
}

func (c *Client) conn(apiKey string) conn {
	key := c.cfg.APIKey
	if apiKey != "" {
		key = apiKey
	}
	cc := goopenai.DefaultConfig(key)
	if c.cfg.BaseURL != "" {
		cc.BaseURL = strings.TrimRight(c.cfg.BaseURL, "/")
	}
	cc.HTTPClient = recorder{c.http}
	return conn{Client: c, api: goopenai.NewClientWithConfig(cc), key: key, callerKey: apiKey != ""}
}

// do runs one OpenAI call with retries, each attempt limited to timeout (none when 0),
// and maps its final failure to a Cairn error.
func (c conn) do(ctx context.Context, op string, timeout time.Duration, call func(ctx context.Context) error) (err error) {
	dep := telemetry.OpenAI
	if c.endpoint {
		// A workspace's own endpoint: its failures are not the server's OpenAI's.
		dep = "embedding_endpoint"
	}
	ctx, end := c.tel.Call(ctx, dep, op)
	defer func() {
		if err != nil && c.callerKey && apperr.Is(err, apperr.Invalid) {
			end(nil) // the caller's own key was refused: OpenAI answered, and is up
			return
		}
		if err != nil {
			err := errors.New(c.redact(err.Error()))
			end(err)
			return
		}
		end(nil)
	}()
	var last response
	policy := c.policy
	policy.Timeout = timeout
	if c.log != nil {
		policy.OnRetry = func(attempt int, err error, wait time.Duration) {
			c.log.Warn("openai: retrying", "op", op, "attempt", attempt, "wait", wait.String(), "err", c.redact(err.Error()))
		}
	}
	err = policy.Do(ctx, func(ctx context.Context) error {
		var r response
		err := call(context.WithValue(ctx, responseKey{}, &r))
		last = r
		return err
	}, func(err error) (bool, time.Duration) {
		return transient(err), last.retryAfter
	})
	if err == nil {
		return nil
	}
	return c.mapError(ctx, op, err, last.retryAfter)
}

// transient reports whether another attempt may succeed: rate limits (but not an
// exhausted quota), server errors, timeouts and broken connections.
func transient(err error) bool {
	status, code := statusOf(err)
	switch {
	case code == "insufficient_quota":
		return false
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooManyRequests, status >= 500:
		return true
	case status != 0:
		return false
	}
	// No HTTP status: the request never got an answer (refused, reset, timed out),
	// or the answer was cut short. Any of those can pass.
	return true
}

// statusOf returns the HTTP status and OpenAI error code carried by err, if any.
func statusOf(err error) (int, string) {
	var apiErr *goopenai.APIError
	if errors.As(err, &apiErr) {
		code, _ := apiErr.Code.(string)
		return apiErr.HTTPStatusCode, code
	}
	var reqErr *goopenai.RequestError
	if errors.As(err, &reqErr) {
		return reqErr.HTTPStatusCode, ""
	}
	return 0, ""
}

// mapError turns a failed call into the error the API answers with. Its cause is
// rewritten as text with the key removed, because OpenAI's messages quote the key
// they rejected and go-openai keeps whole response bodies in its errors.
func (c conn) mapError(ctx context.Context, op string, err error, retryAfter time.Duration) error {
	if retry.CallerGone(ctx) {
		// The caller gave up; there is nobody to tell about OpenAI.
		return fmt.Errorf("openai: %s: %w", op, ctx.Err())
	}
	cause := errors.New("openai: " + op + ": " + c.redact(err.Error()))
	status, code := statusOf(err)
	rejected := status == http.StatusUnauthorized || status == http.StatusForbidden ||
		code == "insufficient_quota" || (status == http.StatusNotFound && code == "model_not_found")
	switch {
	case c.endpoint && (rejected || status >= 400 && status < 500 && status != http.StatusRequestTimeout &&
		status != http.StatusConflict && status != http.StatusTooManyRequests):
		return apperr.Unavailablef(cause, 60, "The workspace's embedding endpoint refused the request (HTTP %d); an owner or admin can change its key, model or URL on Settings.", status)
	case rejected && c.callerKey:
		msg := "OpenAI rejected this key"
		if code == "insufficient_quota" {
			msg = "OpenAI reports this key's quota is used up"
		} else if status == http.StatusNotFound || status == http.StatusForbidden {
			msg = "this key has no access to the configured OpenAI model"
		}
		e := apperr.Field(KeyHeader, "%s", msg)
		e.Err = cause
		return e
	case rejected:
		// The server's own key was refused: an operator must fix it; until then the
		// dependency is as good as down.
		return apperr.Unavailablef(cause, 60, "OpenAI is unavailable; try again later")
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout &&
		status != http.StatusConflict && status != http.StatusTooManyRequests:
		// OpenAI refused a request Cairn built: a bug here, not an outage.
		return cause
	}
	after := defaultRetryAfter
	if retryAfter > 0 {
		after = int(math.Ceil(retryAfter.Seconds()))
	}
	return apperr.Unavailablef(cause, after, "OpenAI is unavailable; try again later")
}

// redact removes the key in use from s.
func (c conn) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

// response is what recorder learned from an attempt's HTTP answer.
type response struct{ retryAfter time.Duration }

type responseKey struct{}

// recorder notes the Retry-After of each answer in the request's context, where do
// reads it: go-openai's errors carry the status but not the headers.
type recorder struct{ base *http.Client }

func (r recorder) Do(req *http.Request) (*http.Response, error) {
	// The trace goes on at OpenAI (or the OpenAI-compatible server) when it reads it.
	telemetry.Inject(req.Context(), req.Header)
	resp, err := r.base.Do(req)
	if rec, ok := req.Context().Value(responseKey{}).(*response); ok && resp != nil {
		rec.retryAfter = retryAfter(resp.Header, time.Now())
	}
	return resp, err
}

// retryAfter reads OpenAI's retry-after-ms, or the standard Retry-After in seconds or
// as an HTTP date; 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
