// Package redistest starts private redis-server processes for tests that need to
// stop Redis without touching the shared one on 6379.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private redis-server started for one test, so the test can stop it
// without touching the shared one on 6379.
type Redis struct {
	URL string
	cmd *exec.Cmd
}

// Start runs redis-server on a free loopback port until the test ends.
func Start(tb testing.TB) *Redis {
	tb.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server is not installed (apt-get install redis-server): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(path, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	r := &Redis{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd}
	tb.Cleanup(r.Stop)
	opts, _ := redis.ParseURL(r.URL)
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: redis-server on port %d did not answer", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// Stop kills the server (as an outage would) and waits for it to exit.
func (r *Redis) Stop() {
	if r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}
