package openai

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/cairn-dev/cairn/internal/apperr"
)

type embedder struct {
	conn
	name string // the stored model name, when the caller gave one
}

// Model names the embedding model, with the dimensions when they were asked for, so
// that vectors of one length are never compared with another's.
func (e *embedder) Model() string {
	if e.name != "" {
		return e.name
	}
	m := "openai/" + e.cfg.EmbeddingModel
	if e.cfg.EmbeddingDimensions > 0 {
		m += "@" + strconv.Itoa(e.cfg.EmbeddingDimensions)
	}
	return m
}

// Embed returns one vector per text, in order, calling OpenAI once per batch.
func (e *embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for _, batch := range batches(texts, e.batchInputs, e.batchBytes) {
		vs, err := e.embedBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

func (e *embedder) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	req := goopenai.EmbeddingRequestStrings{
		Input:      texts,
		Model:      goopenai.EmbeddingModel(e.cfg.EmbeddingModel),
		Dimensions: e.cfg.EmbeddingDimensions,
	}
	var res goopenai.EmbeddingResponse
	err := e.do(ctx, "embeddings", e.timeout, func(ctx context.Context) error {
		var err error
		res, err = e.api.CreateEmbeddings(ctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	vs := make([][]float32, len(texts))
	for _, d := range res.Data {
		if d.Index < 0 || d.Index >= len(vs) || vs[d.Index] != nil || len(d.Embedding) == 0 {
			return nil, e.malformed(fmt.Errorf("embedding index %d of %d", d.Index, len(vs)))
		}
		vs[d.Index] = d.Embedding
	}
	for i, v := range vs {
		switch {
		case v == nil:
			return nil, e.malformed(fmt.Errorf("no embedding for input %d of %d", i, len(vs)))
		case len(v) != len(vs[0]):
			return nil, e.malformed(fmt.Errorf("embedding %d has %d dimensions, embedding 0 has %d", i, len(v), len(vs[0])))
		case e.cfg.EmbeddingDimensions > 0 && len(v) != e.cfg.EmbeddingDimensions:
			return nil, e.malformed(fmt.Errorf("embedding has %d dimensions, asked for %d", len(v), e.cfg.EmbeddingDimensions))
		}
	}
	return vs, nil
}

// malformed reports an answer that cannot be used; the server that sent it is as good
// as down.
func (e *embedder) malformed(cause error) error {
	return apperr.Unavailablef(errors.New("openai: embeddings: malformed response: "+cause.Error()),
		defaultRetryAfter, "OpenAI is unavailable; try again later")
}

// batches splits texts into requests within OpenAI's limits, in order. Each text is
// cut to maxInputBytes at a rune boundary, and an empty one becomes a space, which
// OpenAI accepts where it rejects "".
func batches(texts []string, maxInputs, maxBytes int) [][]string {
	var out [][]string
	var cur []string
	size := 0
	for _, t := range texts {
		t = truncate(t, maxInputBytes)
		if strings.TrimSpace(t) == "" {
			t = " "
		}
		if len(cur) > 0 && (len(cur) >= maxInputs || size+len(t) > maxBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		size += len(t)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
