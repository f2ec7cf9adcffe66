package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestDrainingOnStop stops a replica with SHUTDOWN_DRAIN=2s: /readyz turns 503 at
// once while requests are still served, each response asks the client to close the
// connection, and only after the drain does the replica stop accepting.
func TestDrainingOnStop(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"SHUTDOWN_DRAIN": "2s"})
	client := &http.Client{Transport: &http.Transport{}}
	get := func(path string) (*http.Response, string, error) {
		resp, err := client.Get(inst.URL + path)
		if err != nil {
			return nil, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b), nil
	}
	if resp, _, err := get("/readyz"); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before stopping: /readyz %v %v (close %v), want 200 on a kept-alive connection", resp, err, resp != nil && resp.Close)
	}

	stopped := make(chan time.Time)
	began := time.Now()
	go func() {
		inst.Stop()
		stopped <- time.Now()
	}()
	deadline := time.Now().Add(time.Second)
	for {
		resp, body, err := get("/readyz")
		if err != nil {
			t.Fatalf("/readyz while draining: %v", err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			if !strings.Contains(body, "draining") || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("/readyz while draining = %q, Retry-After %q", body, resp.Header.Get("Retry-After"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 a second after the stop began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, _, err := get("/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a request while draining: %v %v, want it served", resp, err)
	}
	if !resp.Close {
		t.Fatal("a response while draining keeps the connection alive (no Connection: close)")
	}
	end := <-stopped
	if took := end.Sub(began); took < 2*time.Second {
		t.Fatalf("the replica stopped after %s, before its 2s drain", took)
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Fatal("the stopped replica still accepts connections")
	}
}
