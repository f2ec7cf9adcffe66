package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openapiJSON describes every /v1 endpoint; TestOpenAPIDescribesEveryRoute keeps it
// in step with the routes.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI document, for the dashboard's API reference.
func OpenAPI() []byte { return openapiJSON }

// openapi serves the OpenAPI 3.1 document; it needs no key.
func (a *API) openapi(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapiJSON)
}
