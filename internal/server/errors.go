package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/views"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      apperr.Code `json:"code"`
	Message   string      `json:"message"`
	RequestID string      `json:"request_id"`
}

// toAppError turns any error into the *apperr.Error shown to the caller. Internal
// errors become a generic message; their detail only reaches the log.
func toAppError(err error) *apperr.Error {
	if e := apperr.As(err); e != nil {
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg, _ := he.Message.(string)
		switch he.Code {
		case http.StatusNotFound:
			return apperr.New(apperr.NotFound, "There is nothing at this address. The link may be mistyped or out of date.")
		case http.StatusMethodNotAllowed:
			return &apperr.Error{Code: apperr.Invalid, Message: "Method not allowed on this route."}
		case http.StatusRequestEntityTooLarge:
			return apperr.New(apperr.TooLarge, "The request body is over the 10 MiB limit.")
		case http.StatusUnsupportedMediaType:
			return apperr.New(apperr.UnsupportedMedia, "Send the body as application/json.")
		case http.StatusBadRequest:
			if msg == "" {
				msg = "Bad request."
			}
			return apperr.New(apperr.Invalid, "%s", msg)
		case http.StatusUnauthorized:
			return apperr.New(apperr.Unauthorized, "Authentication required.")
		case http.StatusForbidden:
			return apperr.New(apperr.Forbidden, "Forbidden.")
		case http.StatusTooManyRequests:
			return apperr.New(apperr.RateLimited, "Too many requests.")
		case http.StatusServiceUnavailable:
			return &apperr.Error{Code: apperr.Unavailable, Message: "Temporarily unavailable; retry shortly.", RetryAfter: 5}
		}
	}
	if db.IsUnavailable(err) {
		return apperr.Unavailablef(err, 5, "The service is temporarily unavailable; retry shortly.")
	}
	return &apperr.Error{Code: apperr.Internal, Message: "Internal error.", Err: err}
}

// StatusClientClosedRequest is the status (nginx's) recorded for a request whose
// client went away before it was answered.
const StatusClientClosedRequest = 499

// errorHandler is echo's one HTTPErrorHandler: JSON for the API, an HTML page for
// the dashboard.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := toAppError(err)
	if (e.Code == apperr.Internal || e.Code == apperr.Unavailable) && errors.Is(c.Request().Context().Err(), context.Canceled) {
		// The client went away and its request's work was cancelled: no fault of the
		// server's, and no one to answer. Logged and recorded as nginx's 499.
		s.log.Info("client went away", "request_id", reqctx.RequestID(c), "route", c.Path())
		c.Response().Status = StatusClientClosedRequest
		return
	}
	status := e.Code.Status()
	if e.Code == apperr.Internal {
		s.log.Error("internal error", "request_id", reqctx.RequestID(c), "route", c.Path(), "err", err)
		e = &apperr.Error{Code: apperr.Internal, Message: "Internal error."}
	} else if e.Code == apperr.Unavailable {
		s.log.Warn("dependency unavailable", "request_id", reqctx.RequestID(c), "route", c.Path(), "err", err)
	}
	if e.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	} else if e.Code == apperr.Unavailable {
		c.Response().Header().Set("Retry-After", "5")
	}
	var werr error
	switch {
	case c.Request().Method == http.MethodHead:
		werr = c.NoContent(status)
	case isAPIPath(c.Request().URL.Path):
		werr = c.JSON(status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, RequestID: reqctx.RequestID(c)}})
	case s.web != nil && s.web.RenderError(c, status, e):
	default:
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
		c.Response().WriteHeader(status)
		werr = views.ErrorPage(status, views.ErrorTitle(status), e.Message).Render(c.Request().Context(), c.Response())
	}
	if werr != nil {
		s.log.Debug("writing error response failed", "err", werr)
	}
}
