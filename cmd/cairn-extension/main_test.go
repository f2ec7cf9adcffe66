package main

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPacksTheExtensionWithTheBaseURL(t *testing.T) {
	out := filepath.Join(t.TempDir(), "ext.zip")
	var log strings.Builder
	if err := run([]string{"-src", "../../extension", "-out", out, "-base-url", "https://cairn.example.com/"}, &log); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		got[f.Name] = string(b)
	}
	for _, want := range []string{"manifest.json", "popup.html", "popup.js", "options.html", "options.js", "background.js", "cairn.js", "config.js", "icons/icon-128.png"} {
		if _, ok := got[want]; !ok {
			t.Errorf("the zip lacks %s", want)
		}
	}
	for name := range got {
		if strings.HasSuffix(name, ".go") {
			t.Errorf("the zip holds the Go file %s", name)
		}
	}
	if !strings.Contains(got["config.js"], `globalThis.CAIRN_DEFAULT_BACKEND = "https://cairn.example.com";`) {
		t.Fatalf("config.js in the zip:\n%s", got["config.js"])
	}
	src, _ := os.ReadFile("../../extension/config.js")
	if strings.Contains(string(src), "cairn.example.com") {
		t.Fatal("packing changed the source tree's config.js")
	}
}

func TestRefusesABadBaseURL(t *testing.T) {
	for _, bad := range []string{"cairn.example.com", "ftp://x", "https://", "https://x/?a=1", "javascript:alert(1)"} {
		if err := run([]string{"-src", "../../extension", "-out", filepath.Join(t.TempDir(), "x.zip"), "-base-url", bad}, io.Discard); err == nil {
			t.Errorf("-base-url %q accepted", bad)
		}
	}
}
