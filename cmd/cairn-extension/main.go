// Command cairn-extension packs the reference browser extension in extension/ into
// the zip the Chrome Web Store and addons.mozilla.org take, with the deployment's
// BASE_URL as the backend a fresh install talks to:
//
//	go run ./cmd/cairn-extension -base-url https://cairn.example.com -out dist/cairn-extension.zip
//
// (`make extension BASE_URL=…` runs it.) Tests and Go files are left out; the
// manifest is checked to name only files that exist.
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cairn-extension:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("cairn-extension", flag.ContinueOnError)
	src := fl.String("src", "extension", "the extension's directory")
	out := fl.String("out", "dist/cairn-extension.zip", "the zip to write")
	base := fl.String("base-url", "http://localhost:8080", "the backend a fresh install talks to (the deployment's BASE_URL)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	backend, err := checkBaseURL(*base)
	if err != nil {
		return err
	}
	files, err := collect(os.DirFS(*src))
	if err != nil {
		return err
	}
	if err := checkManifest(files); err != nil {
		return err
	}
	cfg, err := configJS(files["config.js"], backend)
	if err != nil {
		return err
	}
	files["config.js"] = cfg
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := writeZip(*out, files); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d files, backend %s\n", *out, len(files), backend)
	return nil
}

// checkBaseURL accepts an http or https URL and returns it without a trailing slash.
func checkBaseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("-base-url %q: want an http or https URL such as https://cairn.example.com", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// collect reads the files the extension ships: everything but Go files and tests.
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

// writeZip writes the files in name order with a fixed time, so the same source
// always makes the same zip.
func writeZip(out string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(files[n]); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
