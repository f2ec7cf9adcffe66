// Command cairn-extension packs the reference browser extension in extension/ into
// the zip the Chrome Web Store and addons.mozilla.org take, with the deployment's
// BASE_URL as the backend a fresh install talks to:
//
//	go run ./cmd/cairn-extension -base-url https://cairn.example.com -out dist/cairn-extension.zip
//
// (`make extension BASE_URL=…` runs it.) Tests and Go files are left out; the
// manifest is checked to name only files that exist (package extension does it;
// the dashboard serves the same zip at /dashboard/extension/download).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cairn-dev/cairn/extension"
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
	backend, err := extension.CheckBaseURL(*base)
	if err != nil {
		return fmt.Errorf("-base-url: %w", err)
	}
	// Packed in memory first, so a refused source leaves no half-written zip.
	var buf bytes.Buffer
	n, err := extension.Pack(&buf, os.DirFS(*src), backend)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d files, backend %s\n", *out, n, backend)
	return nil
}
