package apikey_test

import (
	"testing"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
)

func TestParseScopes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    apikey.Scopes
		invalid bool
	}{
		{"NoneMeansAll", nil, apikey.AllScopes, false},
		{"One", []string{"search"}, apikey.Search, false},
		{"Several", []string{"documents:write", "usage:read"}, apikey.DocumentsWrite | apikey.UsageRead, false},
		{"RepeatsAreHarmless", []string{"answer", "answer"}, apikey.Answer, false},
		{"SpacesTrimmed", []string{" documents:read "}, apikey.DocumentsRead, false},
		{"EveryName", apikey.ScopeNames(), apikey.AllScopes, false},
		{"Unknown", []string{"search", "admin"}, 0, true},
		{"WrongCase", []string{"Search"}, 0, true},
		{"Empty", []string{""}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apikey.ParseScopes(tc.in)
			if tc.invalid {
				if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || e.Field != "scopes" {
					t.Fatalf("ParseScopes(%q) = %v, %v; want invalid_request on scopes", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseScopes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestScopeNamesRoundTrip(t *testing.T) {
	for _, name := range apikey.ScopeNames() {
		s, err := apikey.ParseScopes([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Names(); len(got) != 1 || got[0] != name || s.String() != name {
			t.Fatalf("%s: Names = %v, String = %q", name, got, s.String())
		}
		if !apikey.AllScopes.Has(s) || (apikey.AllScopes &^ s).Has(s) {
			t.Fatalf("%s: not exactly one bit of AllScopes", name)
		}
	}
	if got := (apikey.Search | apikey.DocumentsRead).String(); got != "documents:read search" {
		t.Fatalf("String = %q, want display order", got)
	}
}
