package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/views"
)

// documentsPerPage is how many documents the dashboard lists at a time.
const documentsPerPage = 25

// showDocuments lists a page of the workspace's documents.
func (h *Handler) showDocuments(c echo.Context) error {
	return h.renderDocuments(c, views.Documents{})
}

// searchDocuments searches the workspace's documents: the results block alone for
// htmx, the whole page otherwise.
func (h *Handler) searchDocuments(c echo.Context) error {
	d := views.Documents{Query: c.QueryParam("q")}
	if d.Query != "" {
		d.Searched = true
		q, err := retrieval.CheckQuery("query", d.Query)
		var results []retrieval.Result
		if err == nil {
			err = h.billed(c, "searches", func(ctx context.Context, caller retrieval.Caller) error {
				var err error
				results, err = h.Retrieval.Search(ctx, caller, retrieval.SearchInput{Query: q, TopK: 10, Mode: retrieval.Hybrid})
				return err
			})
		}
		if e := apperr.As(err); e != nil {
			d.Error, d.ErrorField = h.failure(c, e), e.Field
		} else if err != nil {
			return err
		}
		for _, r := range results {
			d.Results = append(d.Results, views.SearchResult{
				DocumentID: r.DocumentID, Title: r.Title, URL: r.URL, Snippet: snippet(r.Text, d.Query, snippetRunes),
			})
		}
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return render(c, http.StatusOK, views.DocumentResults(d))
	}
	return h.renderDocuments(c, d)
}

// snippetRunes is about how much of a matching passage a result shows.
const snippetRunes = 320

// snippet is the part of text around the query's first match, its words marked.
func snippet(text, query string, n int) []views.TextSpan {
	spans := retrieval.Highlight(text, query, n)
	out := make([]views.TextSpan, len(spans))
	for i, s := range spans {
		out[i] = views.TextSpan{Text: s.Text, Mark: s.Match}
	}
	return out
}

// deleteDocument deletes one of the workspace's documents.
func (h *Handler) deleteDocument(c echo.Context) error {
	ws := currentWorkspace(c)
	id := c.FormValue("id")
	if err := h.Retrieval.Delete(c.Request().Context(), ws.ID, id); err != nil {
		return err
	}
	h.flash(c, fmt.Sprintf("Deleted %q.", id))
	return c.Redirect(http.StatusSeeOther, "/dashboard/documents")
}

func (h *Handler) renderDocuments(c echo.Context, d views.Documents) error {
	return h.renderDocumentsStatus(c, http.StatusOK, d)
}

// renderDocumentsStatus renders the Documents page around d with a status (an
// answer that failed keeps its error's).
func (h *Handler) renderDocumentsStatus(c echo.Context, status int, d views.Documents) error {
	ctx := c.Request().Context()
	ws := currentWorkspace(c)
	docs, next, err := h.Retrieval.List(ctx, ws.ID, documentsPerPage, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	n, err := h.Retrieval.DocumentCount(ctx, ws.ID)
	if err != nil {
		return err
	}
	d.Stored = fmt.Sprintf("%s of %s", plan.Format(int64(n)), plan.Format(int64(h.Config.Plans.Get(ws.Plan).Limits.Documents)))
	d.NextCursor = next
	emb, err := h.Retrieval.Embedder(ctx, retrieval.Caller{WorkspaceID: ws.ID, Plan: ws.Plan})
	if err != nil {
		return err
	}
	d.Reembedding = switchView(emb.Pending)
	for _, doc := range docs {
		d.Docs = append(d.Docs, views.DocumentRow{
			ID: doc.ID, Title: doc.Title, URL: doc.URL, Chunks: doc.Chunks, Created: formatTime(&doc.CreatedAt),
			Failed: doc.Reason,
		})
	}
	return render(c, status, views.DocumentsPage(h.shell(c, "Documents", "documents"), d))
}
