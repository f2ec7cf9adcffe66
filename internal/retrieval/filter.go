package retrieval

import (
	"encoding/json"
)

// Match reports whether metadata passes the filter: for every key, the document's
// value must equal one of the allowed values (same type and value; numbers compare
// as float64). A missing key never matches. Keyword search applies the same rule in
// SQL (see ChunkTermHits in db/queries/chunks.sql), and every search checks it again
// here on the rows it returns, so no index can loosen it.
func (f Filter) Match(metadata map[string]any) bool {
	for k, allowed := range f {
		v, ok := metadata[k]
		if !ok {
			return false
		}
		found := false
		for _, a := range allowed {
			if a == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// jsonb encodes the filter for SQL as {"key": [values]}.
func (f Filter) jsonb() []byte {
	if len(f) == 0 {
		return []byte("{}")
	}
	b, err := json.Marshal(map[string][]any(f))
	if err != nil { // values are only strings, float64 and bools
		panic("retrieval: encode filter: " + err.Error())
	}
	return b
}

// decodeMetadata reads stored metadata; numbers become float64 as in Filter.
func decodeMetadata(b []byte) map[string]any {
	m := map[string]any{}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m) // written by us from validated input
	}
	return m
}
