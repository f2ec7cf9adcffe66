package servertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary builds the cairn command into a directory of the test and returns its
// path, for tests that need replicas as real processes (signals, kill -9).
func Binary(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "cairn")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cairn-dev/cairn/cmd/cairn").CombinedOutput()
	if err != nil {
		tb.Fatalf("servertest: go build cmd/cairn: %v\n%s", err, out)
	}
	return bin
}

// Process is a replica running as its own process of the cairn binary, listening on
// a fixed loopback address so that it can be restarted in the same place.
type Process struct {
	Addr string // host:port
	URL  string

	bin string
	env []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
}

// StartProcess runs `cairn serve` on databaseURL with env added to a clean
// environment, waits until /readyz answers 200, and kills it when the test ends.
func StartProcess(tb testing.TB, bin, databaseURL string, env map[string]string) *Process {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &Process{Addr: addr, URL: "http://" + addr, bin: bin}
	vars := map[string]string{
		"DATABASE_URL": databaseURL, "LISTEN_ADDR": addr, "BASE_URL": p.URL,
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
		// Replicas share the machine; 127.0.0.1:9090 would do for only one.
		"METRICS_ADDR": "127.0.0.1:0",
	}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		p.env = append(p.env, k+"="+v)
	}
	tb.Cleanup(p.Kill)
	p.Restart(tb)
	return p
}

// Restart starts the process again (after Signal or Kill) on the same address and
// waits until it is ready.
func (p *Process) Restart(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.bin, "serve")
	cmd.Env = p.env
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		tb.Fatalf("servertest: start %s: %v", p.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.logs, p.exited = cmd, logs, exited
	p.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			tb.Fatalf("servertest: replica %s exited while starting:\n%s", p.Addr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("servertest: replica %s not ready after 30s:\n%s", p.Addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the running process.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Signal(sig)
}

// Wait waits up to timeout for the process to exit and reports whether it did.
func (p *Process) Wait(timeout time.Duration) bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill ends the process at once (SIGKILL), as a crash or the OOM killer would,
// and waits for it.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Logs returns what the current run of the process has written (JSON lines).
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// NewBrowser returns a Browser against the replica (see Instance.NewBrowser).
func (p *Process) NewBrowser(tb testing.TB) *Browser { return newBrowser(tb, p.URL) }

// String names the replica in test messages.
func (p *Process) String() string { return fmt.Sprintf("replica %s", p.Addr) }
