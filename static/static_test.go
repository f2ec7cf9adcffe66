package static

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerCaching(t *testing.T) {
	h := Handler()
	get := func(u string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		return rec
	}
	for _, name := range []string{"app.css", "app.js", "logo.svg", "vendor/htmx.min.js"} {
		t.Run(name, func(t *testing.T) {
			p := Path(name)
			if !strings.HasPrefix(p, "/static/"+name+"?v=") || len(p) != len("/static/"+name+"?v=")+10 {
				t.Fatalf("Path(%q) = %q, want a 10-digit content hash", name, p)
			}
			rec := get(p)
			if rec.Code != 200 || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") || rec.Body.Len() == 0 {
				t.Fatalf("GET %s: %d, Cache-Control %q", p, rec.Code, rec.Header().Get("Cache-Control"))
			}
			if rec := get("/static/" + name + "?v=stale"); rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" {
				t.Fatalf("stale hash: %d, Cache-Control %q; want served but revalidated", rec.Code, rec.Header().Get("Cache-Control"))
			}
		})
	}
	if got := get("/static/app.css").Header().Get("Content-Type"); !strings.HasPrefix(got, "text/css") {
		t.Fatalf("app.css Content-Type %q", got)
	}
	for _, u := range []string{"/static/nope.css", "/static/static.go", "/static/../go.mod", "/static/vendor/", "/static/vendor/axe/axe.min.js"} {
		if rec := get(u); rec.Code != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", u, rec.Code)
		}
	}
}
