package api

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

// FuzzParseRequests feeds arbitrary bodies to every request decoder: none may
// panic, every refusal is a 4xx naming a field, and what is accepted is within the
// contract's limits. The seeds run with every `go test`.
func FuzzParseRequests(f *testing.F) {
	for _, s := range []string{
		`{"documents":[{"text":"hello","title":"t","url":"https://x","metadata":{"a":1,"b":"c","d":true}}]}`,
		`{"documents":[{"id":"x","text":"a"},{"id":"x","text":"b"}]}`,
		`{"documents":[{"text":"a","metadata":{"a":{"b":1}}}]}`,
		`{"query":"tides","top_k":5,"mode":"hybrid","filter":{"lang":"en","n":{"$in":[1,2]}}}`,
		`{"query":"a","filter":{"n":{"$gt":1}}}`,
		`{"question":"why?","stream":true,"top_k":50}`,
		`{"documents":`, `[]`, `null`, ``, `{"a":1,"a":2}`, `{"query":"\u0000"}`,
		`{"top_k":1e400,"query":"x"}`, `{"documents":[{"text":"` + strings.Repeat("é", 300) + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			e := apperr.As(err)
			if e == nil || (e.Code != apperr.Invalid && e.Code != apperr.TooLarge) || e.Field == "" {
				t.Fatalf("%q: %v is not a 4xx naming a field", body, err)
			}
		}
		docs, err := parseUpsert(body)
		check(err)
		if err == nil {
			if len(docs) < 1 || len(docs) > maxBatch {
				t.Fatalf("accepted %d documents", len(docs))
			}
			for _, d := range docs {
				if strings.TrimSpace(d.Text) == "" || len(d.Text) > maxTextBytes || len(d.Metadata) > maxMetadataKeys {
					t.Fatalf("accepted %+v", d)
				}
				if d.ID != "" && retrieval.ValidateID(d.ID) != nil {
					t.Fatalf("accepted id %q", d.ID)
				}
			}
		}
		s, err := parseSearch(body)
		check(err)
		if err == nil && (s.TopK < 1 || s.TopK > maxTopK || s.Query == "" || (s.Mode != retrieval.Hybrid && s.Mode != retrieval.Semantic && s.Mode != retrieval.Keyword)) {
			t.Fatalf("accepted %+v", s)
		}
		a, err := parseAnswer(body)
		check(err)
		if err == nil && (a.TopK < 1 || a.TopK > maxTopK || a.Question == "") {
			t.Fatalf("accepted %+v", a)
		}
	})
}
