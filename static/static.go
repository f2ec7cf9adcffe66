// Package static embeds Cairn's CSS, scripts and images and serves them under
// content-hashed URLs, so browsers may cache them for a year.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// vendor/axe (axe-core) is left out on purpose: only the browser tests use it,
// reading it from disk, so it is neither in the binary nor served.
//
//go:embed *.css *.js *.svg vendor/htmx.min.js vendor/htmx.LICENSE
var files embed.FS

// hashes maps a file's path to the first 10 hex digits of its SHA-256.
var hashes = func() map[string]string {
	m := map[string]string{}
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := files.ReadFile(p)
		sum := sha256.Sum256(b)
		m[p] = hex.EncodeToString(sum[:])[:10]
		return nil
	})
	return m
}()

// Path returns the cache-busting URL of an embedded file, e.g. /static/app.css?v=1a2b3c4d5e.
func Path(name string) string {
	return "/static/" + name + "?v=" + hashes[name]
}

// Handler serves the embedded files under /static/. Requests carrying the current
// hash are cacheable forever; others must revalidate.
func Handler() http.Handler {
	fsrv := http.StripPrefix("/static/", http.FileServer(http.FS(files)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		h, ok := hashes[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == h {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		fsrv.ServeHTTP(w, r)
	})
}
