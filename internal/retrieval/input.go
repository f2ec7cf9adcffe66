package retrieval

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// Limits the service itself relies on; the API's request limits live with its parser.
const (
	// MaxIDLen is the longest client document id, in characters.
	MaxIDLen = 256
	// MaxQueryLen is the longest search query or question, in characters.
	MaxQueryLen = 4000
)

// Mode is a search mode.
type Mode string

// The search modes.
const (
	Hybrid   Mode = "hybrid"
	Semantic Mode = "semantic"
	Keyword  Mode = "keyword"
)

// DocumentInput is one validated document of an upsert: Text, or a page's HTML
// (with its URL) to read the text and title from.
type DocumentInput struct {
	ID       string // empty: derived from the canonical URL when there is one, else generated
	Text     string
	HTML     string
	Title    string // empty with HTML: the page's own title
	URL      string
	Metadata map[string]any // string, float64 or bool values
}

// SearchInput is a validated search request.
type SearchInput struct {
	Query  string
	TopK   int
	Mode   Mode
	Filter Filter
}

// AnswerInput is a validated answer request.
type AnswerInput struct {
	Question string
	TopK     int
	Stream   bool
}

// ValidateID checks a client document id: 1 to 256 printable characters.
func ValidateID(id string) error {
	n := utf8.RuneCountInString(id)
	switch {
	case n == 0:
		return errors.New("must not be empty")
	case n > MaxIDLen:
		return fmt.Errorf("at most %d characters", MaxIDLen)
	case !utf8.ValidString(id) || strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }):
		return errors.New("must be printable characters only")
	}
	return nil
}

// CheckQuery validates a search query or question and returns it trimmed; key
// names the field in the error. PostgreSQL refuses NUL and invalid UTF-8, so both
// are the caller's error rather than the database's.
func CheckQuery(key, q string) (string, error) {
	q = strings.TrimSpace(q)
	switch {
	case !utf8.ValidString(q):
		return "", apperr.Field(key, "must be valid UTF-8")
	case strings.ContainsRune(q, 0):
		return "", apperr.Field(key, "must not contain NUL characters")
	case q == "":
		return "", apperr.Field(key, "must not be empty")
	case utf8.RuneCountInString(q) > MaxQueryLen:
		return "", apperr.Field(key, "at most %d characters", MaxQueryLen)
	}
	return q, nil
}
