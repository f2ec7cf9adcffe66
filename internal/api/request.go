package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/retrieval"
)

// Limits of the public contract (shared/API.md) that requests are held to.
const (
	maxBatch         = 100
	maxTextBytes     = retrieval.MaxTextBytes
	maxHTMLBytes     = 5 << 20
	maxMetadataKeys  = 40
	maxMetadataBytes = 8 << 10
	maxTitleLen      = 1000
	maxURLLen        = 4096
	maxTopK          = 50
	defaultTopK      = 5
	maxListLimit     = 100
	defaultListLimit = 20
	maxFilterValues  = 100
)

// object is a JSON object being read field by field, so every error names the
// field's full path and unknown fields are refused rather than silently ignored.
type object struct {
	path   string
	fields map[string]json.RawMessage
	seen   map[string]bool
}

func fieldPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parseObject decodes raw as a JSON object; path names it in errors ("" is the body).
func parseObject(raw []byte, path string) (*object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		if path == "" {
			return nil, apperr.Field("body", "send a JSON object")
		}
		return nil, apperr.Field(path, "must be an object")
	}
	if raw[0] != '{' {
		if path == "" {
			if !json.Valid(raw) {
				return nil, apperr.Field("body", "is not valid JSON")
			}
			return nil, apperr.Field("body", "must be a JSON object")
		}
		return nil, apperr.Field(path, "must be an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		if path == "" {
			return nil, apperr.Field("body", "is not valid JSON%s", syntaxOffset(err))
		}
		return nil, apperr.Field(path, "must be an object")
	}
	if path == "" && dec.More() {
		return nil, apperr.Field("body", "has data after the JSON object")
	}
	if err := noDuplicateKeys(raw); err != nil {
		name := "body"
		if path != "" {
			name = path
		}
		return nil, apperr.Field(name, "%v", err)
	}
	return &object{path: path, fields: m, seen: map[string]bool{}}, nil
}

func syntaxOffset(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf(" (at byte %d)", se.Offset)
	}
	return ""
}

// noDuplicateKeys refuses {"a":1,"a":2}: which one wins is a guess we won't make.
func noDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("has the key %q twice", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// raw returns a field's JSON, or nil when it is absent or null.
func (o *object) raw(key string) json.RawMessage {
	o.seen[key] = true
	v, ok := o.fields[key]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil
	}
	return v
}

// unknown refuses fields the request does not define.
func (o *object) unknown() error {
	var extra []string
	for k := range o.fields {
		if !o.seen[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	first := extra[0]
	for _, k := range extra {
		if k < first {
			first = k
		}
	}
	if first == "" {
		first = `""`
	}
	return apperr.Field(fieldPath(o.path, first), "unknown field")
}

func (o *object) str(key string, required bool) (string, bool, error) {
	path := fieldPath(o.path, key)
	r := o.raw(key)
	if r == nil {
		if required {
			return "", false, apperr.Field(path, "is required")
		}
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", false, apperr.Field(path, "must be a string")
	}
	if strings.ContainsRune(s, 0) {
		return "", false, apperr.Field(path, "must not contain NUL characters")
	}
	return s, true, nil
}

func (o *object) integer(key string, def, lo, hi int) (int, error) {
	path := fieldPath(o.path, key)
	r := o.raw(key)
	if r == nil {
		return def, nil
	}
	var n json.Number
	if t := bytes.TrimSpace(r); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &n) != nil {
		return 0, apperr.Field(path, "must be a whole number from %d to %d", lo, hi)
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		return 0, apperr.Field(path, "must be a whole number from %d to %d", lo, hi)
	}
	return int(v), nil
}

func (o *object) boolean(key string) (bool, error) {
	r := o.raw(key)
	if r == nil {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(r, &b); err != nil {
		return false, apperr.Field(fieldPath(o.path, key), "must be true or false")
	}
	return b, nil
}

// parseUpsert decodes and validates a POST /v1/documents body.
func parseUpsert(body []byte) ([]retrieval.DocumentInput, error) {
	o, err := parseObject(body, "")
	if err != nil {
		return nil, err
	}
	r := o.raw("documents")
	if err := o.unknown(); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apperr.Field("documents", "is required: send {\"documents\": [{\"text\": \"…\"}]}")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(r, &items); err != nil {
		return nil, apperr.Field("documents", "must be an array of documents")
	}
	switch {
	case len(items) == 0:
		return nil, apperr.Field("documents", "send at least one document")
	case len(items) > maxBatch:
		return nil, &apperr.Error{Code: apperr.TooLarge, Field: "documents",
			Message: fmt.Sprintf("documents: at most %d documents per request; this one has %d", maxBatch, len(items))}
	}
	docs := make([]retrieval.DocumentInput, len(items))
	ids := map[string]int{}
	for i, item := range items {
		path := fmt.Sprintf("documents[%d]", i)
		d, err := parseDocument(item, path)
		if err != nil {
			return nil, err
		}
		if d.ID != "" {
			if j, dup := ids[d.ID]; dup {
				return nil, apperr.Field(path+".id", "repeats documents[%d].id; send each document once", j)
			}
			ids[d.ID] = i
		}
		docs[i] = d
	}
	return docs, nil
}

func parseDocument(raw []byte, path string) (retrieval.DocumentInput, error) {
	var d retrieval.DocumentInput
	o, err := parseObject(raw, path)
	if err != nil {
		return d, err
	}
	id, hasID, err := o.str("id", false)
	if err != nil {
		return d, err
	}
	if hasID {
		if err := retrieval.ValidateID(id); err != nil {
			return d, apperr.Field(path+".id", "%v", err)
		}
		d.ID = id
	}
	text, hasText, err := o.str("text", false)
	if err != nil {
		return d, err
	}
	page, hasHTML, err := o.str("html", false)
	if err != nil {
		return d, err
	}
	switch {
	case hasText && hasHTML:
		return d, apperr.Field(path+".html", "send either text or html, not both")
	case hasHTML:
		switch {
		case len(page) > maxHTMLBytes:
			return d, &apperr.Error{Code: apperr.TooLarge, Field: path + ".html",
				Message: fmt.Sprintf("%s.html: at most 5 MiB of html per document; this one has %d bytes", path, len(page))}
		case strings.TrimSpace(page) == "":
			return d, apperr.Field(path+".html", "must contain the page's html")
		}
		d.HTML = page
	case !hasText:
		return d, apperr.Field(path+".text", "is required (or send a page as html with its url)")
	case len(text) > maxTextBytes:
		return d, &apperr.Error{Code: apperr.TooLarge, Field: path + ".text",
			Message: fmt.Sprintf("%s.text: at most 1 MiB of text per document; this one has %d bytes", path, len(text))}
	case strings.TrimSpace(text) == "":
		return d, apperr.Field(path+".text", "must contain some text")
	default:
		d.Text = text
	}
	if d.Title, _, err = o.str("title", false); err != nil {
		return d, err
	}
	if utf8.RuneCountInString(d.Title) > maxTitleLen {
		return d, apperr.Field(path+".title", "at most %d characters", maxTitleLen)
	}
	d.Title = strings.TrimSpace(d.Title)
	if d.URL, _, err = o.str("url", false); err != nil {
		return d, err
	}
	if len(d.URL) > maxURLLen || strings.ContainsFunc(d.URL, unicode.IsControl) {
		return d, apperr.Field(path+".url", "must be a URL of at most %d characters without control characters", maxURLLen)
	}
	if hasHTML {
		// The page's address resolves its links and, without an id, names it.
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return d, apperr.Field(path+".url", "is required with html: the page's http or https address")
		}
	}
	if md := o.raw("metadata"); md != nil {
		if d.Metadata, err = parseMetadata(md, path+".metadata"); err != nil {
			return d, err
		}
	}
	return d, o.unknown()
}

// parseMetadata reads a flat object of string, number and boolean values.
func parseMetadata(raw []byte, path string) (map[string]any, error) {
	o, err := parseObject(raw, path)
	if err != nil {
		return nil, err
	}
	if len(o.fields) > maxMetadataKeys {
		return nil, apperr.Field(path, "at most %d keys; this has %d", maxMetadataKeys, len(o.fields))
	}
	if len(bytes.TrimSpace(raw)) > maxMetadataBytes {
		return nil, apperr.Field(path, "at most 8 KiB of JSON")
	}
	m := make(map[string]any, len(o.fields))
	for k, v := range o.fields {
		kp := fieldPath(path, k)
		if k == "" || strings.ContainsRune(k, 0) {
			return nil, apperr.Field(path, "keys must be non-empty and without NUL characters")
		}
		val, err := scalar(v, kp)
		if err != nil {
			return nil, err
		}
		m[k] = val
	}
	return m, nil
}

// scalar reads a string, number or boolean; numbers become float64, the type
// filters compare them as everywhere.
func scalar(raw json.RawMessage, path string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, apperr.Field(path, "must be a string, number or boolean")
	}
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return nil, apperr.Field(path, "must not contain NUL characters")
		}
		return x, nil
	case bool:
		return x, nil
	case json.Number:
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, apperr.Field(path, "number out of range")
		}
		return f, nil
	}
	return nil, apperr.Field(path, "must be a string, number or boolean (metadata is flat)")
}

// parseSearch decodes and validates a POST /v1/search body.
func parseSearch(body []byte) (retrieval.SearchInput, error) {
	var in retrieval.SearchInput
	o, err := parseObject(body, "")
	if err != nil {
		return in, err
	}
	if in.Query, err = query(o, "query"); err != nil {
		return in, err
	}
	if in.TopK, err = o.integer("top_k", defaultTopK, 1, maxTopK); err != nil {
		return in, err
	}
	mode, has, err := o.str("mode", false)
	if err != nil {
		return in, err
	}
	in.Mode = retrieval.Hybrid
	if has {
		switch retrieval.Mode(mode) {
		case retrieval.Hybrid, retrieval.Semantic, retrieval.Keyword:
			in.Mode = retrieval.Mode(mode)
		default:
			return in, apperr.Field("mode", "must be \"hybrid\", \"semantic\" or \"keyword\"")
		}
	}
	if f := o.raw("filter"); f != nil {
		if in.Filter, err = parseFilter(f); err != nil {
			return in, err
		}
	}
	return in, o.unknown()
}

func query(o *object, key string) (string, error) {
	q, _, err := o.str(key, true)
	if err != nil {
		return "", err
	}
	return retrieval.CheckQuery(key, q)
}

// parseFilter reads {"key": value} and {"key": {"$in": [values]}}.
func parseFilter(raw []byte) (retrieval.Filter, error) {
	o, err := parseObject(raw, "filter")
	if err != nil {
		return nil, err
	}
	if len(o.fields) > maxMetadataKeys {
		return nil, apperr.Field("filter", "at most %d keys", maxMetadataKeys)
	}
	f := retrieval.Filter{}
	for k, v := range o.fields {
		// Metadata keys are never empty nor hold NUL (PostgreSQL refuses it in jsonb).
		if k == "" || strings.ContainsRune(k, 0) {
			return nil, apperr.Field("filter", "keys must be non-empty and without NUL characters")
		}
		kp := fieldPath("filter", k)
		if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '{' {
			op, err := parseObject(t, kp)
			if err != nil {
				return nil, err
			}
			in := op.raw("$in")
			if err := op.unknown(); err != nil {
				return nil, apperr.Field(kp, "the only operator is $in")
			}
			if in == nil {
				return nil, apperr.Field(kp+".$in", "is required")
			}
			var items []json.RawMessage
			if err := json.Unmarshal(in, &items); err != nil || len(items) == 0 || len(items) > maxFilterValues {
				return nil, apperr.Field(kp+".$in", "must be an array of 1 to %d values", maxFilterValues)
			}
			for i, it := range items {
				val, err := scalar(it, fmt.Sprintf("%s.$in[%d]", kp, i))
				if err != nil {
					return nil, err
				}
				f[k] = append(f[k], val)
			}
			continue
		}
		val, err := scalar(v, kp)
		if err != nil {
			return nil, err
		}
		f[k] = []any{val}
	}
	return f, nil
}

// parseAnswer decodes and validates a POST /v1/answer body.
func parseAnswer(body []byte) (retrieval.AnswerInput, error) {
	var in retrieval.AnswerInput
	o, err := parseObject(body, "")
	if err != nil {
		return in, err
	}
	if in.Question, err = query(o, "question"); err != nil {
		return in, err
	}
	if in.TopK, err = o.integer("top_k", defaultTopK, 1, maxTopK); err != nil {
		return in, err
	}
	if in.Stream, err = o.boolean("stream"); err != nil {
		return in, err
	}
	return in, o.unknown()
}

// parseListLimit reads GET /v1/documents's limit parameter.
func parseListLimit(s string) (int, error) {
	if s == "" {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, apperr.Field("limit", "must be a whole number from 1 to %d", maxListLimit)
	}
	return n, nil
}
