package apikey

import (
	"strings"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// Scopes is a set of the kinds of calls a key may make. It is a bit set so that a
// Principal stays comparable (the API caches answers per principal).
type Scopes uint8

// The scopes of shared/API.md, one bit each.
const (
	DocumentsRead Scopes = 1 << iota
	DocumentsWrite
	Search
	Answer
	UsageRead

	// AllScopes is what a key made without a choice has, and what every key made
	// before scopes existed keeps.
	AllScopes = DocumentsRead | DocumentsWrite | Search | Answer | UsageRead
)

// scopeNames lists the scopes in the order they are shown and stored.
var scopeNames = []struct {
	s    Scopes
	name string
}{
	{DocumentsRead, "documents:read"},
	{DocumentsWrite, "documents:write"},
	{Search, "search"},
	{Answer, "answer"},
	{UsageRead, "usage:read"},
}

// ScopeNames returns every scope's name, in display order.
func ScopeNames() []string {
	out := make([]string, len(scopeNames))
	for i, n := range scopeNames {
		out[i] = n.name
	}
	return out
}

// Has reports whether every scope of want is in s.
func (s Scopes) Has(want Scopes) bool { return s&want == want }

// Names returns the names of the scopes in s, in display order.
func (s Scopes) Names() []string {
	out := []string{}
	for _, n := range scopeNames {
		if s.Has(n.s) {
			out = append(out, n.name)
		}
	}
	return out
}

// String joins the names with spaces, as OAuth writes scopes.
func (s Scopes) String() string { return strings.Join(s.Names(), " ") }

// ParseScopes reads scope names (repeats are harmless). None at all means every
// scope, as for keys made before scopes existed; an unknown name is an
// invalid_request on the field "scopes".
func ParseScopes(names []string) (Scopes, error) {
	var s Scopes
	for _, name := range names {
		one, ok := scopeByName(strings.TrimSpace(name))
		if !ok {
			return 0, apperr.Field("scopes", "unknown scope %q; the scopes are %s", name, strings.Join(ScopeNames(), ", "))
		}
		s |= one
	}
	if s == 0 {
		return AllScopes, nil
	}
	return s, nil
}

// scopesFromDB reads the stored names; names this version does not know are
// ignored, so an older replica never grants a scope it cannot check.
func scopesFromDB(names []string) Scopes {
	var s Scopes
	for _, name := range names {
		if one, ok := scopeByName(name); ok {
			s |= one
		}
	}
	return s
}

func scopeByName(name string) (Scopes, bool) {
	for _, n := range scopeNames {
		if n.name == name {
			return n.s, true
		}
	}
	return 0, false
}
