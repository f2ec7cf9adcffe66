package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/views"
)

// showDocs renders the API reference. It is built from the OpenAPI document the API
// serves at /v1/openapi.json, so the page cannot say anything the document does not.
func (h *Handler) showDocs(c echo.Context) error {
	ref, err := h.apiRef()
	if err != nil {
		return fmt.Errorf("web: api reference: %w", err)
	}
	loggedIn := h.Sessions.GetString(c.Request().Context(), sessUserID) != ""
	csrf := ""
	if loggedIn { // the log-out form needs it; visitors get no session
		csrf = csrfToken(c)
	}
	return render(c, http.StatusOK, views.APIReferencePage(csrf, loggedIn, ref))
}

// openAPI is the part of an OpenAPI 3.1 document the reference shows.
type openAPI struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Security   []map[string][]string             `json:"security"`
	Paths      ordered[ordered[json.RawMessage]] `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type        string `json:"type"`
			Scheme      string `json:"scheme"`
			In          string `json:"in"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"securitySchemes"`
		Parameters map[string]*oaParameter `json:"parameters"`
		Responses  ordered[*oaResponse]    `json:"responses"`
		Schemas    ordered[*oaSchema]      `json:"schemas"`
		Headers    map[string]*oaHeader    `json:"headers"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary"`
	Description string                 `json:"description"`
	Parameters  []*oaParameter         `json:"parameters"`
	Security    *[]map[string][]string `json:"security"`
	RequestBody *struct {
		Required bool                   `json:"required"`
		Content  map[string]oaMediaType `json:"content"`
	} `json:"requestBody"`
	Responses ordered[*oaResponse] `json:"responses"`
}

type oaParameter struct {
	Ref         string    `json:"$ref"`
	Name        string    `json:"name"`
	In          string    `json:"in"`
	Required    bool      `json:"required"`
	Description string    `json:"description"`
	Schema      *oaSchema `json:"schema"`
}

type oaResponse struct {
	Ref         string                 `json:"$ref"`
	Description string                 `json:"description"`
	Headers     map[string]*oaHeader   `json:"headers"`
	Content     map[string]oaMediaType `json:"content"`
}

type oaHeader struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
}

type oaMediaType struct {
	Schema *oaSchema `json:"schema"`
}

// oaSchema is the JSON Schema subset the document uses; anything else it holds is
// ignored, and TestAPIReferenceShowsTheWholeDocument notices a keyword that matters.
type oaSchema struct {
	Ref                  string             `json:"$ref"`
	Type                 schemaTypes        `json:"type"`
	Description          string             `json:"description"`
	Format               string             `json:"format"`
	Enum                 []any              `json:"enum"`
	Default              any                `json:"default"`
	Properties           ordered[*oaSchema] `json:"properties"`
	Required             []string           `json:"required"`
	Items                *oaSchema          `json:"items"`
	OneOf                []*oaSchema        `json:"oneOf"`
	AnyOf                []*oaSchema        `json:"anyOf"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	MinLength            *int64             `json:"minLength"`
	MaxLength            *int64             `json:"maxLength"`
	Minimum              *float64           `json:"minimum"`
	Maximum              *float64           `json:"maximum"`
	MinItems             *int64             `json:"minItems"`
	MaxItems             *int64             `json:"maxItems"`
	MaxProperties        *int64             `json:"maxProperties"`
	Pattern              string             `json:"pattern"`
}

// schemaTypes is JSON Schema's "type": one name or a list of them.
type schemaTypes []string

func (t *schemaTypes) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = schemaTypes{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*t = many
	return nil
}

// additional returns the schema of additionalProperties when it is one (not a boolean).
func (s *oaSchema) additional() *oaSchema {
	if len(s.AdditionalProperties) == 0 || s.AdditionalProperties[0] != '{' {
		return nil
	}
	var a oaSchema
	if json.Unmarshal(s.AdditionalProperties, &a) != nil {
		return nil
	}
	return &a
}

// ordered is a JSON object that remembers the order of its keys, so the reference
// lists paths, operations, properties and schemas in the order the document's
// authors chose.
type ordered[V any] struct {
	keys []string
	m    map[string]V
}

func (o *ordered[V]) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &o.m); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		o.keys = append(o.keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// get returns the value of key.
func (o ordered[V]) get(key string) (V, bool) {
	v, ok := o.m[key]
	return v, ok
}

// httpMethods are the keys of a path item that are operations.
var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// buildAPIReference turns an OpenAPI document into the reference's view model: every
// operation in the document's order, with its parameters, body fields, responses
// and a curl example against base, then every schema and the error responses.
func buildAPIReference(raw []byte, base string) (views.APIReference, error) {
	var doc openAPI
	if err := json.Unmarshal(raw, &doc); err != nil {
		return views.APIReference{}, err
	}
	b := refBuilder{doc: &doc}
	ref := views.APIReference{
		Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description, BaseURL: base,
	}
	for _, name := range sortedKeys(doc.Components.SecuritySchemes) {
		s := doc.Components.SecuritySchemes[name]
		a := views.APIAuth{Description: s.Description}
		switch {
		case s.Type == "http" && s.Scheme == "bearer":
			a.Header = "Authorization: Bearer <key>"
		case s.Type == "apiKey" && s.In == "header":
			a.Header = s.Name + ": <key>"
		default:
			a.Header = s.Type
		}
		ref.Auth = append(ref.Auth, a)
	}

	for _, path := range doc.Paths.keys {
		item := doc.Paths.m[path]
		var shared []*oaParameter
		if p, ok := item.get("parameters"); ok {
			if err := json.Unmarshal(p, &shared); err != nil {
				return views.APIReference{}, fmt.Errorf("%s parameters: %w", path, err)
			}
		}
		for _, m := range item.keys {
			if !httpMethods[m] {
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(item.m[m], &op); err != nil {
				return views.APIReference{}, fmt.Errorf("%s %s: %w", m, path, err)
			}
			o, err := b.operation(strings.ToUpper(m), path, op, shared, len(doc.Security) > 0)
			if err != nil {
				return views.APIReference{}, err
			}
			o.Example = curlExample(base, o)
			ref.Operations = append(ref.Operations, o)
		}
	}
	for _, name := range doc.Components.Schemas.keys {
		s := doc.Components.Schemas.m[name]
		ref.Schemas = append(ref.Schemas, views.APISchema{
			Name: name, Anchor: schemaAnchor(name), Type: b.typeOf(s), Description: s.Description,
			Constraints: constraints(s), Fields: b.fields("", s, 0),
		})
	}
	// The shared error responses, in the order of the status operations use them for.
	for _, name := range doc.Components.Responses.keys {
		r := doc.Components.Responses.m[name]
		ref.Errors = append(ref.Errors, views.APIErrorResponse{Status: b.statusOf(name), Description: r.Description})
	}
	sort.SliceStable(ref.Errors, func(i, j int) bool { return ref.Errors[i].Status < ref.Errors[j].Status })
	return ref, nil
}

// refBuilder resolves $refs against one document.
type refBuilder struct{ doc *openAPI }

func (b refBuilder) operation(method, path string, op oaOperation, shared []*oaParameter, secured bool) (views.APIOperation, error) {
	o := views.APIOperation{
		ID: op.OperationID, Method: method, Path: path, Summary: op.Summary, Description: op.Description,
		NeedsKey: secured,
	}
	if o.ID == "" {
		o.ID = strings.ToLower(method) + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path)
	}
	if op.Security != nil {
		o.NeedsKey = len(*op.Security) > 0
	}
	for _, p := range append(append([]*oaParameter(nil), shared...), op.Parameters...) {
		if p.Ref != "" {
			rp, ok := b.doc.Components.Parameters[refName(p.Ref)]
			if !ok {
				return o, fmt.Errorf("%s %s: unknown parameter %s", method, path, p.Ref)
			}
			p = rp
		}
		f := views.APIField{Name: p.Name, In: p.In, Required: p.Required || p.In == "path", Description: p.Description}
		if p.Schema != nil {
			f.Type = b.typeOf(p.Schema)
			f.Constraints = constraints(p.Schema)
			if f.Description == "" {
				f.Description = p.Schema.Description
			}
		}
		o.Params = append(o.Params, f)
	}
	if op.RequestBody != nil {
		for _, ct := range sortedKeys(op.RequestBody.Content) {
			s := op.RequestBody.Content[ct].Schema
			body := views.APIBody{ContentType: ct, Required: op.RequestBody.Required}
			if s != nil {
				body.Type = b.typeOf(s)
				body.Fields = b.fields("", b.resolve(s), 0)
				if ct == "application/json" {
					ex, err := json.Marshal(b.example(s, 0))
					if err != nil {
						return o, fmt.Errorf("%s %s: example body: %w", method, path, err)
					}
					o.ExampleBody = string(ex)
				}
			}
			o.Body = append(o.Body, body)
		}
	}
	for _, status := range op.Responses.keys {
		r := op.Responses.m[status]
		if r.Ref != "" {
			rr, ok := b.doc.Components.Responses.get(refName(r.Ref))
			if !ok {
				return o, fmt.Errorf("%s %s: unknown response %s", method, path, r.Ref)
			}
			r = rr
		}
		resp := views.APIResponse{Status: status, Description: r.Description, OK: strings.HasPrefix(status, "2")}
		for _, ct := range sortedKeys(r.Content) {
			mt := views.APIMedia{ContentType: ct}
			if s := r.Content[ct].Schema; s != nil {
				mt.Type = b.typeOf(s)
			}
			resp.Content = append(resp.Content, mt)
		}
		resp.Headers = sortedKeys(r.Headers)
		o.Responses = append(o.Responses, resp)
	}
	return o, nil
}

// resolve follows a schema's $ref to the component it names.
func (b refBuilder) resolve(s *oaSchema) *oaSchema {
	for i := 0; s != nil && s.Ref != "" && i < 8; i++ {
		s = b.doc.Components.Schemas.m[refName(s.Ref)]
	}
	return s
}

// typeOf names a schema's type in words, as a sequence of text and links to the
// schemas it refers to: "array of DocumentInput", "string or null".
func (b refBuilder) typeOf(s *oaSchema) []views.APIToken {
	if s == nil {
		return []views.APIToken{{Text: "any"}}
	}
	if s.Ref != "" {
		name := refName(s.Ref)
		return []views.APIToken{{Text: name, Anchor: schemaAnchor(name)}}
	}
	alts := s.OneOf
	if len(alts) == 0 {
		alts = s.AnyOf
	}
	if len(alts) > 0 {
		var out []views.APIToken
		for i, a := range alts {
			if i > 0 {
				out = append(out, views.APIToken{Text: " or "})
			}
			out = append(out, b.typeOf(a)...)
		}
		return out
	}
	var out []views.APIToken
	for i, t := range s.Type {
		if i > 0 {
			out = append(out, views.APIToken{Text: " or "})
		}
		switch t {
		case "array":
			out = append(out, views.APIToken{Text: "array of "})
			out = append(out, b.typeOf(s.Items)...)
		case "object":
			if a := s.additional(); a != nil && len(s.Properties.keys) == 0 {
				out = append(out, views.APIToken{Text: "object of "})
				out = append(out, b.typeOf(a)...)
			} else {
				out = append(out, views.APIToken{Text: "object"})
			}
		default:
			text := t
			if s.Format != "" {
				text += " (" + s.Format + ")"
			}
			out = append(out, views.APIToken{Text: text})
		}
	}
	if len(out) == 0 {
		out = []views.APIToken{{Text: "any"}}
	}
	return out
}

// fields flattens an object schema into rows: nested objects and arrays of objects
// defined in place get dotted names (workspace.id, results[].score); referenced
// schemas are linked, not repeated.
func (b refBuilder) fields(prefix string, s *oaSchema, depth int) []views.APIField {
	if s == nil || depth > 6 {
		return nil
	}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	var out []views.APIField
	for _, name := range s.Properties.keys {
		p := s.Properties.m[name]
		f := views.APIField{
			Name: prefix + name, Required: required[name], Type: b.typeOf(p),
			Description: p.Description, Constraints: constraints(p),
		}
		out = append(out, f)
		switch {
		case p.Ref == "" && len(p.Properties.keys) > 0:
			out = append(out, b.fields(prefix+name+".", p, depth+1)...)
		case p.Ref == "" && p.Items != nil && p.Items.Ref == "" && len(p.Items.Properties.keys) > 0:
			out = append(out, b.fields(prefix+name+"[].", p.Items, depth+1)...)
		}
	}
	return out
}

// constraints lists a schema's limits and default in words.
func constraints(s *oaSchema) string {
	var parts []string
	switch {
	case s.MinLength != nil && s.MaxLength != nil:
		parts = append(parts, fmt.Sprintf("%d–%d characters", *s.MinLength, *s.MaxLength))
	case s.MaxLength != nil:
		parts = append(parts, fmt.Sprintf("at most %d characters", *s.MaxLength))
	case s.MinLength != nil:
		parts = append(parts, fmt.Sprintf("at least %d characters", *s.MinLength))
	}
	switch {
	case s.Minimum != nil && s.Maximum != nil:
		parts = append(parts, fmt.Sprintf("%s–%s", num(*s.Minimum), num(*s.Maximum)))
	case s.Minimum != nil:
		parts = append(parts, "≥ "+num(*s.Minimum))
	case s.Maximum != nil:
		parts = append(parts, "≤ "+num(*s.Maximum))
	}
	switch {
	case s.MinItems != nil && s.MaxItems != nil:
		parts = append(parts, fmt.Sprintf("%d–%d items", *s.MinItems, *s.MaxItems))
	case s.MaxItems != nil:
		parts = append(parts, fmt.Sprintf("at most %d items", *s.MaxItems))
	case s.MinItems != nil:
		parts = append(parts, fmt.Sprintf("at least %d items", *s.MinItems))
	}
	if s.MaxProperties != nil {
		parts = append(parts, fmt.Sprintf("at most %d keys", *s.MaxProperties))
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = jsonText(v)
		}
		parts = append(parts, "one of "+strings.Join(vals, ", "))
	}
	if s.Pattern != "" {
		parts = append(parts, "matches "+s.Pattern)
	}
	if s.Default != nil {
		parts = append(parts, "default "+jsonText(s.Default))
	}
	return strings.Join(parts, "; ")
}

// example builds a request body from a schema: its required properties, each with
// its default, first allowed value or a placeholder.
func (b refBuilder) example(s *oaSchema, depth int) any {
	s = b.resolve(s)
	if s == nil || depth > 6 {
		return nil
	}
	if s.Default != nil {
		return s.Default
	}
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	if len(s.OneOf) > 0 && len(s.Type) == 0 {
		return b.example(s.OneOf[0], depth+1)
	}
	t := ""
	for _, x := range s.Type {
		if x != "null" {
			t = x
			break
		}
	}
	switch t {
	case "object":
		m := map[string]any{}
		required := s.Required
		if len(s.OneOf) > 0 {
			// An object whose alternatives only say which fields it needs (text, or
			// html with url): the first alternative's.
			required = append(append([]string(nil), required...), b.resolve(s.OneOf[0]).Required...)
		}
		for _, name := range required {
			if p, ok := s.Properties.get(name); ok {
				m[name] = b.example(p, depth+1)
			}
		}
		return m
	case "array":
		return []any{b.example(s.Items, depth+1)}
	case "string":
		return "…"
	case "integer", "number":
		if s.Minimum != nil {
			return *s.Minimum
		}
		return 0
	case "boolean":
		return false
	}
	return nil
}

// curlExample is a command that calls the operation, with the required fields of its
// body; the key comes from $CAIRN_API_KEY so the snippet can be pasted as it is.
func curlExample(base string, o views.APIOperation) string {
	var b strings.Builder
	b.WriteString("curl")
	if o.Method != http.MethodGet {
		b.WriteString(" -X " + o.Method)
	}
	b.WriteString(" " + shellQuote(base+o.Path))
	if o.NeedsKey {
		b.WriteString(` \` + "\n  -H \"Authorization: Bearer $CAIRN_API_KEY\"")
	}
	if o.ExampleBody != "" {
		b.WriteString(` \` + "\n  -H 'Content-Type: application/json'")
		b.WriteString(` \` + "\n  -d " + shellQuote(o.ExampleBody))
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// statusOf finds the status under which operations use a component response, so
// the error table is in status order: the first use wins.
func (b refBuilder) statusOf(name string) string {
	want := "#/components/responses/" + name
	for _, path := range b.doc.Paths.keys {
		item := b.doc.Paths.m[path]
		for _, m := range item.keys {
			if !httpMethods[m] {
				continue
			}
			var op oaOperation
			if json.Unmarshal(item.m[m], &op) != nil {
				continue
			}
			for _, status := range op.Responses.keys {
				if op.Responses.m[status].Ref == want {
					return status
				}
			}
		}
	}
	return ""
}

func refName(ref string) string { return ref[strings.LastIndexByte(ref, '/')+1:] }

func schemaAnchor(name string) string { return "schema-" + name }

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
