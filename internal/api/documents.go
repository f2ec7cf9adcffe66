package api

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/account"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

type upsertResponse struct {
	Documents []storedJSON `json:"documents"`
}

type storedJSON struct {
	ID        string `json:"id"`
	Chunks    int    `json:"chunks"`
	Unchanged bool   `json:"unchanged"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
}

type documentJSON struct {
	ID        string         `json:"id"`
	Title     string         `json:"title"`
	URL       string         `json:"url"`
	Metadata  map[string]any `json:"metadata"`
	Chunks    int            `json:"chunks"`
	Status    string         `json:"status"`
	Reason    string         `json:"reason"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	Text      *string        `json:"text,omitempty"`
}

type listResponse struct {
	Documents  []documentJSON `json:"documents"`
	NextCursor *string        `json:"next_cursor"`
}

// caller is the retrieval caller of an authenticated request; the OpenAI-API-Key
// header travels with it for this request only.
// A billable request's caller carries its quota charge, which the service takes
// before any expensive work.
func caller(c echo.Context) retrieval.Caller {
	p := principal(c)
	rc := retrieval.Caller{WorkspaceID: p.WorkspaceID, Plan: p.Plan, OpenAIKey: c.Request().Header.Get("OpenAI-API-Key")}
	if ch := charge(c); ch != nil {
		rc.Quota = ch
	}
	return rc
}

// readBody reads the request body; the body limit middleware's error passes through.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, apperr.Field("body", "could not be read")
	}
	return b, nil
}

// documentID returns the {id} path parameter decoded: echo leaves it escaped when
// the path needed escaping (an id with a slash, say).
func documentID(c echo.Context) (string, error) {
	id := c.Param("id")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(id)
		if err != nil {
			return "", apperr.New(apperr.NotFound, "No document with that id in this workspace.")
		}
		id = u
	}
	if retrieval.ValidateID(id) != nil {
		return "", apperr.New(apperr.NotFound, "No document with that id in this workspace.")
	}
	return id, nil
}

// upsertDocuments stores a batch of documents.
func (a *API) upsertDocuments(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	docs, err := parseUpsert(body)
	if err != nil {
		return err
	}
	stored, err := a.Retrieval.Upsert(c.Request().Context(), caller(c), docs)
	if err != nil {
		return err
	}
	resp := upsertResponse{Documents: make([]storedJSON, len(stored))}
	for i, s := range stored {
		resp.Documents[i] = storedJSON{ID: s.ID, Chunks: s.Chunks, Unchanged: s.Unchanged, Status: s.Status, Reason: s.Reason}
	}
	return c.JSON(http.StatusOK, resp)
}

// listDocuments pages through the workspace's documents, newest first.
func (a *API) listDocuments(c echo.Context) error {
	limit, err := parseListLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	docs, next, err := a.Retrieval.List(c.Request().Context(), principal(c).WorkspaceID, limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	resp := listResponse{Documents: make([]documentJSON, len(docs))}
	for i, d := range docs {
		resp.Documents[i] = toDocumentJSON(d, false)
	}
	if next != "" {
		resp.NextCursor = &next
	}
	return c.JSON(http.StatusOK, resp)
}

// getDocument returns one document with its text.
func (a *API) getDocument(c echo.Context) error {
	id, err := documentID(c)
	if err != nil {
		return err
	}
	d, err := a.Retrieval.Get(c.Request().Context(), principal(c).WorkspaceID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDocumentJSON(d, true))
}

// deleteDocument removes a document from the store and every index.
func (a *API) deleteDocument(c echo.Context) error {
	id, err := documentID(c)
	if err != nil {
		return err
	}
	if err := a.Retrieval.Delete(c.Request().Context(), principal(c).WorkspaceID, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func toDocumentJSON(d retrieval.Document, withText bool) documentJSON {
	j := documentJSON{
		ID: d.ID, Title: d.Title, URL: d.URL, Metadata: d.Metadata, Chunks: d.Chunks, Status: d.Status, Reason: d.Reason,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	if j.Metadata == nil {
		j.Metadata = map[string]any{}
	}
	if withText {
		j.Text = &d.Text
	}
	return j
}

// exportDocuments streams every document of the key's workspace as NDJSON, one
// document a line in the shape POST /v1/documents takes (account.WriteDocuments),
// read page by page so any number of documents exports in bounded memory. A
// failure once lines have gone out cannot become an error response: the connection
// is cut, so the client sees a failed transfer rather than a short export. Before
// the first line (the database down) it is an error response as usual.
func (a *API) exportDocuments(c echo.Context) error {
	p := principal(c)
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	if err := account.WriteDocuments(c.Request().Context(), a.Retrieval, p.WorkspaceID, w, false); err != nil {
		if !w.Committed {
			w.Header().Del(echo.HeaderContentType)
			return err
		}
		a.Log.Error("api: export failed part way; connection cut", "workspace_id", p.WorkspaceID.String(), "err", err)
		panic(http.ErrAbortHandler)
	}
	if !w.Committed {
		w.WriteHeader(http.StatusOK) // no documents: an empty stream
	}
	return nil
}
