// Package extension holds the reference browser extension (the files beside this
// one) and packs it into the zip that browsers and their stores take, with a
// deployment's BASE_URL as the backend a fresh install talks to. cmd/cairn-extension
// packs it from a source tree for the stores; the dashboard serves it for download.
package extension

import (
	"archive/zip"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Files is the extension as built into the binary.
//
//go:embed manifest.json *.js *.html *.css icons
var Files embed.FS

// CheckBaseURL accepts an http or https URL and returns it without a trailing slash.
func CheckBaseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("base URL %q: want an http or https URL such as https://cairn.example.com", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Pack writes the extension in fsys to w as a zip whose config.js names backend
// (checked with CheckBaseURL) as the default server. Go files and dot files are
// left out, and the manifest must name only files the zip holds. The same source
// always makes the same zip. It returns how many files it packed.
func Pack(w io.Writer, fsys fs.FS, backend string) (int, error) {
	backend, err := CheckBaseURL(backend)
	if err != nil {
		return 0, err
	}
	files, err := collect(fsys)
	if err != nil {
		return 0, err
	}
	if err := checkManifest(files); err != nil {
		return 0, err
	}
	if files["config.js"], err = configJS(files["config.js"], backend); err != nil {
		return 0, err
	}
	return len(files), writeZip(w, files)
}

// collect reads the files the extension ships: everything but Go files and dot files.
func collect(fsys fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".go") || strings.HasPrefix(path.Base(p), ".") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		files[p] = b
		return err
	})
	return files, err
}

var configLine = regexp.MustCompile(`(?m)^globalThis\.CAIRN_DEFAULT_BACKEND = .*;$`)

// configJS sets the default backend in config.js.
func configJS(src []byte, backend string) ([]byte, error) {
	if !configLine.Match(src) {
		return nil, errors.New("config.js has no line globalThis.CAIRN_DEFAULT_BACKEND = …;")
	}
	lit, _ := json.Marshal(backend) // a JSON string is a JavaScript string literal
	return configLine.ReplaceAll(src, []byte("globalThis.CAIRN_DEFAULT_BACKEND = "+strings.ReplaceAll(string(lit), "$", "$$")+";")), nil
}

// checkManifest refuses a manifest that names a file the zip would not hold.
func checkManifest(files map[string][]byte) error {
	raw, ok := files["manifest.json"]
	if !ok {
		return errors.New("no manifest.json")
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	if m["manifest_version"] != float64(3) {
		return errors.New("manifest.json: manifest_version must be 3")
	}
	var missing []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if ext := path.Ext(x); ext == ".js" || ext == ".html" || ext == ".png" || ext == ".css" {
				if _, ok := files[x]; !ok {
					missing = append(missing, x)
				}
			}
		}
	}
	walk(m)
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("manifest.json names missing files: %s", strings.Join(missing, ", "))
	}
	return nil
}

// writeZip writes the files in name order with a fixed time.
func writeZip(w io.Writer, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, n := range names {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return err
		}
		if _, err := fw.Write(files[n]); err != nil {
			return err
		}
	}
	return zw.Close()
}
