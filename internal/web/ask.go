package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/sse"
	"github.com/cairn-dev/cairn/views"
)

// askSources is how many passages an answer is drawn from, as the API's default.
const askSources = 5

// citationRunes is about how much of a cited passage the page shows.
const citationRunes = 220

// askDocuments answers a question from the workspace's documents, metered exactly
// like POST /v1/answer (billed). The page's script asks for server-sent events
// (Accept: text/event-stream) and gets the answer's text as it is written
// ("delta"), then its sources ("citations") and "done", or one "error" event with
// the message, before or after text began. Without JavaScript the form posts as
// usual and gets the Documents page with the answer on it.
func (h *Handler) askDocuments(c echo.Context) error {
	question := c.FormValue("question")
	if strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/event-stream") {
		return h.streamAnswer(c, question)
	}
	d := views.Documents{Question: question}
	status := http.StatusOK
	ans, err := h.answer(c, question, nil)
	if e := apperr.As(err); e != nil {
		status = e.Code.Status()
		d.AskError, d.ErrorField = h.failure(c, e), e.Field
	} else if err != nil {
		return err
	} else {
		d.Answer = &ans
	}
	return h.renderDocumentsStatus(c, status, d)
}

// streamAnswer is askDocuments for the page's script.
func (h *Handler) streamAnswer(c echo.Context, question string) error {
	stream := sse.New(c.Response())
	ans, err := h.answer(c, question, func(d string) error {
		return stream.Event("delta", map[string]string{"text": d})
	})
	if err != nil {
		e := apperr.As(err)
		if e == nil || e.Code == apperr.Internal {
			h.Log.Error("dashboard answer failed", "request_id", reqctx.RequestID(c), "err", err)
			e = &apperr.Error{Code: apperr.Internal, Message: "Something went wrong, so the answer could not be finished. Please try again."}
		}
		return stream.Event("error", h.failure(c, e))
	}
	if err := stream.Event("citations", map[string]any{"citations": ans.Citations}); err != nil {
		return nil // the person left after the answer's text: the work was done
	}
	_ = stream.Event("done", map[string]any{"extractive": ans.Extractive})
	return nil
}

// answer checks the question and answers it, billed to the workspace; onDelta, when
// set, receives the answer's text as it is written.
func (h *Handler) answer(c echo.Context, question string, onDelta func(string) error) (views.Answer, error) {
	q, err := retrieval.CheckQuery("question", question)
	if err != nil {
		return views.Answer{}, err
	}
	var ans retrieval.Answer
	err = h.billed(c, "questions", func(ctx context.Context, caller retrieval.Caller) error {
		var err error
		ans, err = h.Retrieval.Answer(ctx, caller, retrieval.AnswerInput{Question: q, TopK: askSources, Stream: onDelta != nil}, onDelta)
		return err
	})
	if err != nil {
		return views.Answer{}, err
	}
	out := views.Answer{Text: ans.Text, Extractive: ans.Mode == retrieval.Extractive, Citations: []views.Citation{}}
	for i, cit := range ans.Citations {
		out.Citations = append(out.Citations, views.Citation{
			N: i + 1, DocumentID: cit.DocumentID, Title: cit.Title, URL: views.SafeHref(cit.URL),
			Snippet: snippet(cit.Text, q, citationRunes),
		})
	}
	return out, nil
}
