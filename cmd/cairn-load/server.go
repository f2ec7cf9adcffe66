package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-dev/cairn/internal/db"
)

// server is a cairn binary serving on a scratch database, with one account on a
// plan and a key for it.
type server struct {
	base string
	key  string
	pid  int
	stop func() // stops the server and drops its database
}

// startServer starts bin serve on a new database on dbServer with env added to a
// clean environment, signs an account up through the sign-up form, puts it on
// planName with "cairn admin set-plan" and mints a key with "cairn admin create-key".
func startServer(ctx context.Context, bin, dbServer, planName string, env ...string) (*server, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no cairn binary at %s (run make build, or pass the flag): %w", bin, err)
	}
	name := "cairn_load_" + randomHex(6)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	// Each replica its own metrics port: -metered runs two, and the default
	// (127.0.0.1:9090) may be taken by anything else on the machine.
	env = append(append(cleanEnv(), "DATABASE_URL="+db.WithDatabase(dbServer, name), "LISTEN_ADDR="+addr, "BASE_URL="+base,
		"METRICS_ADDR=127.0.0.1:0"), env...)
	var serverErr bytes.Buffer
	cmd := exec.Command(bin, "serve")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, nil, &serverErr // access logs go to /dev/null
	if err := cmd.Start(); err != nil {
		dropDatabase(dbServer, name)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &server{base: base, pid: cmd.Process.Pid, stop: func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		dropDatabase(dbServer, name)
	}}
	fail := func(err error) (*server, error) {
		s.stop()
		return nil, err
	}
	if err := waitReady(ctx, base, exited); err != nil {
		return fail(fmt.Errorf("%w\n%s", err, serverErr.String()))
	}
	email := "load-" + randomHex(4) + "@example.com"
	if err := signUp(base, email, "load test password"); err != nil {
		return fail(err)
	}
	if strings.ToLower(planName) != "free" {
		if _, err := admin(bin, env, "set-plan", "--workspace", email, "--plan", planName); err != nil {
			return fail(err)
		}
	}
	if s.key, err = admin(bin, env, "create-key", "--workspace", email, "--name", "cairn-load"); err != nil {
		return fail(err)
	}
	return s, nil
}
