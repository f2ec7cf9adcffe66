package dbtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/db"
)

// PgBouncer starts PgBouncer in transaction mode in front of the database at dbURL
// (from New) and returns the same database's URL through it. Its admin console is
// the database "pgbouncer" on the same address. The test is skipped when PgBouncer
// is not installed, except in CI (CI set), where .ci/run installs it.
func PgBouncer(tb testing.TB, dbURL string) string {
	tb.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "" {
			tb.Skip("dbtest: pgbouncer is not installed (apt-get install pgbouncer); test skipped")
		}
		tb.Fatal("dbtest: pgbouncer is not installed; CI must install it")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("dbtest: pgbouncer: %v", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		tb.Fatalf("dbtest: pgbouncer: %v", err)
	}
	user := u.User.Username()
	listen := freePort(tb)
	dir := tb.TempDir()
	// PgBouncer refuses to run as root; as root it is started as nobody, who must
	// be able to read its files.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
`, host, port, listen, filepath.Join(dir, "users.txt"), user)
	files := map[string]string{"pgbouncer.ini": ini, "users.txt": fmt.Sprintf("%q \"\"\n", user)}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	args := []string{filepath.Join(dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(dir, "pgbouncer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		tb.Fatalf("dbtest: start pgbouncer: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pooled := *u
	pooled.Host = fmt.Sprintf("127.0.0.1:%d", listen)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, PgBouncerAdminURL(pooled.String()))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			break
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			tb.Fatalf("dbtest: pgbouncer did not accept connections: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pooled.String()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PgBouncerAdminURL returns the URL of the admin console (SHOW POOLS, SHOW STATS)
// of the PgBouncer that pooledURL leads through. The console speaks only the simple
// query protocol.
func PgBouncerAdminURL(pooledURL string) string {
	u, err := url.Parse(db.WithDatabase(pooledURL, "pgbouncer"))
	if err != nil {
		return pooledURL
	}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	u.RawQuery = q.Encode()
	return u.String()
}
