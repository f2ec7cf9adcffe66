package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

type answerResponse struct {
	Answer    string         `json:"answer"`
	Mode      string         `json:"mode"`
	Citations []citationJSON `json:"citations"`
}

type citationJSON struct {
	DocumentID string `json:"document_id"`
	Title      string `json:"title"`
	URL        string `json:"url"`
	Text       string `json:"text"`
}

// answer answers a question from the workspace's documents, as one JSON response
// or, with "stream": true, as server-sent events: delta (repeated), citations, done.
func (a *API) answer(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	in, err := parseAnswer(body)
	if err != nil {
		return err
	}
	if !in.Stream {
		ans, err := a.Retrieval.Answer(c.Request().Context(), caller(c), in, nil)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, answerResponse{Answer: ans.Text, Mode: ans.Mode, Citations: toCitations(ans.Citations)})
	}

	// Headers go out with the first delta, so a failure before it (retrieval, an
	// unreachable model) is still an ordinary JSON error with its status.
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx must not hold events back
		c.Response().WriteHeader(http.StatusOK)
	}
	ans, err := a.Retrieval.Answer(c.Request().Context(), caller(c), in, func(d string) error {
		start()
		return writeEvent(c, "delta", map[string]string{"text": d})
	})
	if err != nil {
		if !started {
			return err
		}
		markFailed(c) // the 200 went out, but the answer did not
		e := apperr.As(err)
		if e == nil || e.Code == apperr.Internal {
			a.Log.Error("answer stream failed", "request_id", reqctx.RequestID(c), "err", err)
			e = &apperr.Error{Code: apperr.Internal, Message: "Internal error."}
		}
		return writeEvent(c, "error", map[string]any{"error": map[string]string{
			"code": string(e.Code), "message": e.Message, "request_id": reqctx.RequestID(c),
		}})
	}
	start()
	if err := writeEvent(c, "citations", map[string]any{"citations": toCitations(ans.Citations)}); err != nil {
		return nil // the client went away after the answer's text: the work was done
	}
	_ = writeEvent(c, "done", map[string]string{"mode": ans.Mode})
	return nil
}

// writeEvent writes one server-sent event with a JSON payload and flushes it.
func writeEvent(c echo.Context, name string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(c.Response(), "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	c.Response().Flush()
	return nil
}

func toCitations(cs []retrieval.Citation) []citationJSON {
	out := make([]citationJSON, len(cs))
	for i, c := range cs {
		out[i] = citationJSON{DocumentID: c.DocumentID, Title: c.Title, URL: c.URL, Text: c.Text}
	}
	return out
}
