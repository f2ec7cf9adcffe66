package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// maxFormBody bounds a dashboard request body. The forms are a few short fields;
// without a bound the CSRF check's form parsing would read up to 10 MB into memory,
// and multipart file parts to disk without limit, for anyone who asks.
const maxFormBody = 64 << 10

// limitBody refuses dashboard bodies over maxFormBody before anything reads them.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > maxFormBody {
			return apperr.New(apperr.TooLarge, "The form is over the %d KiB limit.", maxFormBody>>10)
		}
		// A chunked body is cut off at the bound; the form then parses as empty and
		// fails the CSRF check.
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBody)
		return next(c)
	}
}
