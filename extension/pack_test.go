package extension

import (
	"archive/zip"
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRefusesAManifestNamingAMissingFile(t *testing.T) {
	files := map[string][]byte{"manifest.json": []byte(`{"manifest_version":3,"action":{"default_popup":"nope.html"}}`)}
	if err := checkManifest(files); err == nil || !strings.Contains(err.Error(), "nope.html") {
		t.Fatalf("checkManifest = %v", err)
	}
}

// TestTheBuiltInCopyPacks: the files built into the binary make a whole
// extension (the dashboard serves it), with the server's address in config.js.
func TestTheBuiltInCopyPacks(t *testing.T) {
	var buf bytes.Buffer
	n, err := Pack(&buf, Files, "https://cairn.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != n {
		t.Fatalf("Pack says %d files, the zip holds %d", n, len(zr.File))
	}
	for _, f := range zr.File {
		if f.Name != "config.js" {
			continue
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(b), `globalThis.CAIRN_DEFAULT_BACKEND = "https://cairn.example.com";`) {
			t.Fatalf("config.js:\n%s", b)
		}
		return
	}
	t.Fatal("the zip has no config.js")
}
