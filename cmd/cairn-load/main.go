// Command cairn-load drives HTTP load at a URL from a fixed number of connections
// and prints requests per second and latency percentiles. With -ratio it starts
// the real cairn binary on a fresh database and measures GET /v1/me throughput
// against GET /healthz throughput in one run (the hot-path overhead figure in
// docs/benchmarks.md).
//
//	cairn-load [-c 64] [-d 10s] [-rate 0] [-m GET] [-H 'Name: value']... [-body s | -body-file f] [-json] URL
//	cairn-load -ratio [-bin bin/cairn] [-plan pro] [-rate 0] [-c 64] [-d 10s] [-rounds 2] [-min-ratio 0.8] [-json]
//	cairn-load -metered [-bin bin/cairn] [-unmetered-bin bin/cairn-nometering] [-documents 1000] [-c 256] [-d 10s] [-rounds 2] [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-dev/cairn/internal/loadgen"
)

type headerFlag http.Header

func (h headerFlag) String() string { return "" }

func (h headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cairn-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cairn-load", flag.ContinueOnError)
	header := headerFlag(http.Header{})
	concurrency := fs.Int("c", 64, "connections, each with one request in flight")
	duration := fs.Duration("d", 10*time.Second, "how long to send (per endpoint and round with -ratio)")
	method := fs.String("m", http.MethodGet, "HTTP method")
	body := fs.String("body", "", "request body")
	bodyFile := fs.String("body-file", "", "read the request body from this file")
	asJSON := fs.Bool("json", false, "print results as JSON")
	rate := fs.Float64("rate", 0, "open loop: requests per second over all connections (0: as fast as answers come)")
	fs.Var(header, "H", "request header 'Name: value' (repeatable)")
	ratio := fs.Bool("ratio", false, "start the cairn binary and measure /v1/me ÷ /healthz throughput")
	bin := fs.String("bin", "bin/cairn", "the cairn binary for -ratio")
	dbServer := fs.String("db", defaultDBServer(), "PostgreSQL server for -ratio's scratch database")
	rounds := fs.Int("rounds", 2, "alternating measurement rounds per endpoint for -ratio")
	minRatio := fs.Float64("min-ratio", 0, "with -ratio, exit non-zero when the ratio is below this")
	planName := fs.String("plan", "pro", "with -ratio, the plan of the measured key: free, pro or enterprise")
	meteredCmp := fs.Bool("metered", false, "start -bin and -unmetered-bin and compare POST /v1/search on a Free workspace through each")
	unmeteredBin := fs.String("unmetered-bin", "bin/cairn-nometering", "with -metered, a cairn binary built with -tags nometering")
	documents := fs.Int("documents", 1000, "with -metered, how many documents the workspace holds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *meteredCmp {
		return runMetered(ctx, meteredOptions{
			bin: *bin, unmeteredBin: *unmeteredBin, dbServer: *dbServer, documents: *documents,
			concurrency: *concurrency, duration: *duration, rounds: *rounds, json: *asJSON,
		}, stdout)
	}
	if *ratio {
		if p := strings.ToLower(*planName); p != "free" && p != "pro" && p != "enterprise" {
			return fmt.Errorf("-plan %q: want free, pro or enterprise", *planName)
		}
		return runRatio(ctx, ratioOptions{
			bin: *bin, dbServer: *dbServer, concurrency: *concurrency, duration: *duration,
			rounds: *rounds, minRatio: *minRatio, json: *asJSON, plan: strings.ToLower(*planName), rate: *rate,
		}, stdout)
	}
	if fs.NArg() != 1 {
		return errors.New("want one URL (or -ratio); see -h")
	}
	payload := []byte(*body)
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			return err
		}
		payload = b
	}
	res, err := loadgen.Run(ctx, loadgen.Options{
		URL: fs.Arg(0), Method: *method, Header: http.Header(header), Body: payload,
		Concurrency: *concurrency, Duration: *duration, Rate: *rate,
	})
	if err != nil {
		return err
	}
	return print(stdout, *asJSON, res)
}

func print(w io.Writer, asJSON bool, v fmt.Stringer) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintln(w, v.String())
	return err
}

func defaultDBServer() string {
	if u := os.Getenv("CAIRN_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}
