// Package testbin finds the helper programs tests run (stripe-mock, mailpit), which
// `make test` installs with go install.
package testbin

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Find returns the path of the program name, looking on PATH and in $GOPATH/bin.
// When it is missing the test is skipped on a developer's machine and fails in CI
// (CI is set), with install as the way to get it.
func Find(tb testing.TB, name, install string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") == "" {
		tb.Skipf("%s is not installed (%s); test skipped", name, install)
	}
	tb.Fatalf("%s is not installed: %s", name, install)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago, for programs
// that cannot listen on port 0 and report it.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testbin: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
