package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

type searchResponse struct {
	Results []resultJSON `json:"results"`
}

type resultJSON struct {
	DocumentID string         `json:"document_id"`
	Chunk      int            `json:"chunk"`
	Score      float64        `json:"score"`
	Text       string         `json:"text"`
	Title      string         `json:"title"`
	URL        string         `json:"url"`
	Metadata   map[string]any `json:"metadata"`
}

// search finds the passages that match a query.
func (a *API) search(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	in, err := parseSearch(body)
	if err != nil {
		return err
	}
	results, err := a.Retrieval.Search(c.Request().Context(), caller(c), in)
	if err != nil {
		return err
	}
	resp := searchResponse{Results: make([]resultJSON, len(results))}
	for i, r := range results {
		resp.Results[i] = resultJSON{
			DocumentID: r.DocumentID, Chunk: r.Chunk, Score: r.Score, Text: r.Text,
			Title: r.Title, URL: r.URL, Metadata: r.Metadata,
		}
	}
	return c.JSON(http.StatusOK, resp)
}
