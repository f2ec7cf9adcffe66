// Command cairn serves the Cairn dashboard and API, migrates its database and runs
// admin tasks. Run "cairn help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/server"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", strings.ReplaceAll(err.Error(), "\n", "\ncairn: "))
		os.Exit(1)
	}
}

const usage = `usage: cairn <command>

commands:
  serve                      serve the dashboard and API (default)
  migrate                    apply database migrations and exit
  healthcheck                exit 0 when the replica on LISTEN_ADDR is ready (GET /readyz),
                             1 otherwise: for Docker's HEALTHCHECK
  admin set-plan --workspace <id or owner email> --plan free|pro|enterprise
  admin create-key --workspace <id or owner email> --name <name>
  admin sync-billing --workspace <id or owner email>
                             re-read the workspace's subscriptions from Stripe and apply them
  admin reindex --workspace <id or owner email>
                             write the workspace's vectors from PostgreSQL to the vector index again
  version                    print the version

Configuration is read from the environment; see README.md.
`

func run(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "cairn", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "healthcheck":
		// Only LISTEN_ADDR: a probe must not fail on a secret file it cannot read.
		return healthcheck(ctx, getenv("LISTEN_ADDR"), stdout)
	}
	cfg, err := config.Load(getenv, environ)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	switch cmd {
	case "serve":
		srv, err := server.New(ctx, cfg, log)
		if err != nil {
			return err
		}
		return srv.ListenAndServe(ctx)
	case "migrate":
		if err := db.EnsureDatabase(ctx, cfg.DirectDatabaseURL()); err != nil {
			return err
		}
		if err := db.MigrateURL(ctx, cfg.DirectDatabaseURL()); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "admin":
		return runAdmin(ctx, cfg, args, stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func runAdmin(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("admin: want a subcommand: set-plan, create-key, sync-billing or reindex")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ref := fs.String("workspace", "", "workspace id or owner email")
	planName := fs.String("plan", "", "free, pro or enterprise")
	name := fs.String("name", "", "key name")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("admin %s: %w", sub, err)
	}
	if *ref == "" {
		return fmt.Errorf("admin %s: --workspace is required", sub)
	}
	pool, err := server.OpenDatabase(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	defer pool.Close()
	workspaces := workspace.NewService(pool, cfg.Plans)
	ws, err := workspaces.Resolve(ctx, *ref)
	if err != nil {
		return adminError(err)
	}
	switch sub {
	case "set-plan":
		p := plan.ID(strings.ToLower(*planName))
		if !cfg.Plans.Valid(p) {
			return errors.New("admin set-plan: --plan must be free, pro or enterprise")
		}
		if err := workspaces.SetPlan(ctx, ws.ID, p, nil, "admin"); err != nil {
			return adminError(err)
		}
		fmt.Fprintf(stdout, "workspace %s (%s): plan %s → %s\n", ws.ID, ws.Name, ws.Plan, p)
		return nil
	case "create-key":
		keys := apikey.NewService(pool, cfg.Plans, slog.New(slog.DiscardHandler))
		created, err := keys.Create(ctx, ws.ID, nil, *name)
		if err != nil {
			return adminError(err)
		}
		fmt.Fprintln(stdout, created.Secret)
		return nil
	case "sync-billing":
		p, err := billing.New(pool, cfg, slog.New(slog.DiscardHandler)).Sync(ctx, ws.ID)
		if err != nil {
			return adminError(err)
		}
		fmt.Fprintf(stdout, "workspace %s (%s): plan %s → %s (from Stripe)\n", ws.ID, ws.Name, ws.Plan, p)
		return nil
	case "reindex":
		svc, closeIndex, err := server.NewRetrieval(cfg, pool, nil, nil, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			return err
		}
		defer closeIndex()
		n, err := svc.Reindex(ctx, ws.ID)
		if err != nil {
			return adminError(err)
		}
		fmt.Fprintf(stdout, "workspace %s (%s): %d vectors written to the vector index\n", ws.ID, ws.Name, n)
		return nil
	}
	return fmt.Errorf("admin: unknown subcommand %q (want set-plan, create-key, sync-billing or reindex)", sub)
}

// healthcheck asks the replica listening on addr (LISTEN_ADDR, ":8080" when empty)
// whether it is ready, through loopback when it listens on every interface.
func healthcheck(ctx context.Context, addr string, stdout io.Writer) error {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: LISTEN_ADDR %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s answered %d", url, resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// adminError shows a domain error's message rather than its code prefix.
func adminError(err error) error {
	if e := apperr.As(err); e != nil && e.Code != apperr.Internal {
		return errors.New(e.Message)
	}
	return err
}
