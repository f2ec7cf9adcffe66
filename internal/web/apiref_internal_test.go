package web

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/views"
)

func TestSchemaInWords(t *testing.T) {
	doc := &openAPI{}
	if err := json.Unmarshal([]byte(`{"components":{"schemas":{"Item":{"type":"object","required":["a"],"properties":{"a":{"type":"string","default":"x"}}}}}}`), doc); err != nil {
		t.Fatal(err)
	}
	b := refBuilder{doc: doc}
	for _, tc := range []struct {
		name, schema, typ, constraints string
	}{
		{"PlainString", `{"type":"string"}`, "string", ""},
		{"Nullable", `{"type":["integer","null"]}`, "integer or null", ""},
		{"Format", `{"type":"string","format":"uuid"}`, "string (uuid)", ""},
		{"Reference", `{"$ref":"#/components/schemas/Item"}`, "[Item](schema-Item)", ""},
		{"ArrayOfReferences", `{"type":"array","items":{"$ref":"#/components/schemas/Item"},"minItems":1,"maxItems":100}`, "array of [Item](schema-Item)", "1–100 items"},
		{"MapOfScalars", `{"type":"object","maxProperties":40,"additionalProperties":{"oneOf":[{"type":"string"},{"type":"number"}]}}`, "object of string or number", "at most 40 keys"},
		{"ObjectWithProperties", `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, "object", ""},
		{"LengthRange", `{"type":"string","minLength":1,"maxLength":256}`, "string", "1–256 characters"},
		{"MaxLengthOnly", `{"type":"string","maxLength":4096}`, "string", "at most 4096 characters"},
		{"RangeWithDefault", `{"type":"integer","minimum":1,"maximum":50,"default":5}`, "integer", "1–50; default 5"},
		{"MinimumOnly", `{"type":"integer","minimum":0}`, "integer", "≥ 0"},
		{"Enum", `{"type":"string","enum":["hybrid","keyword"],"default":"hybrid"}`, "string", `one of "hybrid", "keyword"; default "hybrid"`},
		{"NoType", `{}`, "any", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s oaSchema
			if err := json.Unmarshal([]byte(tc.schema), &s); err != nil {
				t.Fatal(err)
			}
			if got := tokens(b.typeOf(&s)); got != tc.typ {
				t.Errorf("type = %q, want %q", got, tc.typ)
			}
			if got := constraints(&s); got != tc.constraints {
				t.Errorf("constraints = %q, want %q", got, tc.constraints)
			}
		})
	}
}

func TestExampleBodyHoldsTheRequiredFields(t *testing.T) {
	doc := &openAPI{}
	if err := json.Unmarshal([]byte(`{"components":{"schemas":{
		"Doc":{"type":"object","required":["text"],"properties":{"id":{"type":"string"},"text":{"type":"string"}}},
		"Req":{"type":"object","required":["documents","mode","top_k"],"properties":{
			"documents":{"type":"array","items":{"$ref":"#/components/schemas/Doc"}},
			"mode":{"type":"string","enum":["hybrid","keyword"]},
			"top_k":{"type":"integer","minimum":1},
			"stream":{"type":"boolean"}}}}}}`), doc); err != nil {
		t.Fatal(err)
	}
	b := refBuilder{doc: doc}
	got, err := json.Marshal(b.example(&oaSchema{Ref: "#/components/schemas/Req"}, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"documents":[{"text":"…"}],"mode":"hybrid","top_k":1}`; string(got) != want {
		t.Fatalf("example = %s, want %s", got, want)
	}
}

func TestCurlExampleQuotesForTheShell(t *testing.T) {
	got := curlExample("https://cairn.example", views.APIOperation{
		Method: "POST", Path: "/v1/search", NeedsKey: true, ExampleBody: `{"query":"it's"}`,
	})
	want := "curl -X POST 'https://cairn.example/v1/search' \\\n" +
		"  -H \"Authorization: Bearer $CAIRN_API_KEY\" \\\n" +
		"  -H 'Content-Type: application/json' \\\n" +
		"  -d '{\"query\":\"it'\\''s\"}'"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := curlExample("http://x", views.APIOperation{Method: "GET", Path: "/v1/openapi.json"}); got != "curl 'http://x/v1/openapi.json'" {
		t.Fatalf("a GET without key or body: %s", got)
	}
}

// tokens writes a type's tokens as text, links as [text](anchor).
func tokens(ts []views.APIToken) string {
	var b strings.Builder
	for _, t := range ts {
		if t.Anchor != "" {
			b.WriteString("[" + t.Text + "](" + t.Anchor + ")")
		} else {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
