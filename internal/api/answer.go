package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/sse"
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
	stream := sse.New(c.Response())
	ans, err := a.Retrieval.Answer(c.Request().Context(), caller(c), in, func(d string) error {
		return stream.Event("delta", map[string]string{"text": d})
	})
	if err != nil {
		if !stream.Started() {
			return err
		}
		markFailed(c) // the 200 went out, but the answer did not
		e := apperr.As(err)
		if e == nil || e.Code == apperr.Internal {
			a.Log.Error("answer stream failed", "request_id", reqctx.RequestID(c), "err", err)
			e = &apperr.Error{Code: apperr.Internal, Message: "Internal error."}
		}
		return stream.Event("error", map[string]any{"error": map[string]string{
			"code": string(e.Code), "message": e.Message, "request_id": reqctx.RequestID(c),
		}})
	}
	if err := stream.Event("citations", map[string]any{"citations": toCitations(ans.Citations)}); err != nil {
		return nil // the client went away after the answer's text: the work was done
	}
	_ = stream.Event("done", map[string]string{"mode": ans.Mode})
	return nil
}

func toCitations(cs []retrieval.Citation) []citationJSON {
	out := make([]citationJSON, len(cs))
	for i, c := range cs {
		out[i] = citationJSON{DocumentID: c.DocumentID, Title: c.Title, URL: c.URL, Text: c.Text}
	}
	return out
}
