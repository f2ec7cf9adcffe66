// Package apperr defines Cairn's one error type: a code that maps to an HTTP status,
// a message safe to show the caller, and the field at fault when there is one.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error; its string is the "code" of the API's JSON error.
type Code string

// Error codes, as documented in shared/API.md.
const (
	Invalid      Code = "invalid_request"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	// PlanLimit refuses a key whose creator is suspended after a downgrade.
	PlanLimit Code = "plan_limit"
	// InsufficientScope refuses a key without the scope the route needs.
	InsufficientScope Code = "insufficient_scope"
	NotFound          Code = "not_found"
	Conflict          Code = "conflict"
	TooLarge          Code = "payload_too_large"
	UnsupportedMedia  Code = "unsupported_media_type"
	RateLimited       Code = "rate_limited"
	QuotaExceeded     Code = "quota_exceeded"
	Internal          Code = "internal"
	Unavailable       Code = "unavailable"
)

var statuses = map[Code]int{
	Invalid:           http.StatusBadRequest,
	Unauthorized:      http.StatusUnauthorized,
	Forbidden:         http.StatusForbidden,
	PlanLimit:         http.StatusForbidden,
	InsufficientScope: http.StatusForbidden,
	NotFound:          http.StatusNotFound,
	Conflict:          http.StatusConflict,
	TooLarge:          http.StatusRequestEntityTooLarge,
	UnsupportedMedia:  http.StatusUnsupportedMediaType,
	RateLimited:       http.StatusTooManyRequests,
	QuotaExceeded:     http.StatusTooManyRequests,
	Internal:          http.StatusInternalServerError,
	Unavailable:       http.StatusServiceUnavailable,
}

// Status returns the HTTP status for a code; unknown codes are 500.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error with a code and a message meant for the caller.
type Error struct {
	Code    Code
	Message string
	// Field names the request field at fault, if any.
	Field string
	// RetryAfter, in seconds, is sent as Retry-After when positive.
	RetryAfter int
	// Err is the underlying cause; it is logged, never shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error with a code and a message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an invalid_request Error naming the field at fault.
func Field(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Unavailablef returns an unavailable Error that asks the caller to retry after the given seconds.
func Unavailablef(cause error, retryAfter int, format string, args ...any) *Error {
	return &Error{Code: Unavailable, Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter, Err: cause}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code of err: its *Error's code, or Internal.
func CodeOf(err error) Code {
	if e := As(err); e != nil {
		return e.Code
	}
	return Internal
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool {
	return err != nil && CodeOf(err) == code
}
