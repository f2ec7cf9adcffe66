package account_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// heapSampler records the largest live heap (runtime/metrics' heap objects, which
// includes garbage not yet collected) seen while it runs, sampling every interval.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func sampleHeap(interval time.Duration) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), peak: heapNow()}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.peak = max(h.peak, heapNow())
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak in bytes.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return max(h.peak, heapNow())
}

// BenchmarkExport50k downloads "my data" through the dashboard for a workspace of
// 50,000 documents of about 2 KiB each (about 100 MiB of text that compresses
// poorly, so the zip alone would exceed the budget if it were held) and reports the process's peak heap during the download: the export
// streams, so it must stay below 100 MiB. Server and client share the process, so
// the figure includes the replica's own baseline.
//
//	go test -run '^$' -bench BenchmarkExport50k -benchtime 1x ./internal/account/
func BenchmarkExport50k(b *testing.B) {
	inst := servertest.Start(b, nil)
	acct := inst.NewAccount(b, plan.Enterprise)
	ctx := context.Background()
	if _, err := inst.Server.Pool().Exec(ctx, `
		INSERT INTO documents (workspace_id, id, title, url, metadata, text, chunks)
		SELECT $1, 'doc-' || lpad(i::text, 6, '0'), 'Document ' || i, 'https://example.com/' || i,
		       jsonb_build_object('n', i, 'kind', 'bench'), (SELECT string_agg(encode(sha256((i || '-' || j)::text::bytea), 'base64'), ' ') FROM generate_series(1, 46) AS j), 1
		FROM generate_series(1, 50000) AS i`, acct.WorkspaceID); err != nil {
		b.Fatal(err)
	}
	br := inst.NewBrowser(b)
	br.LogIn(acct.Email, servertest.Password)

	b.ResetTimer()
	var peak, base uint64
	var size int64
	for range b.N {
		runtime.GC()
		base = heapNow()
		h := sampleHeap(time.Millisecond)
		resp, err := br.Client.Get(inst.URL + "/dashboard/settings/export")
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("export: %d %v", resp.StatusCode, err)
		}
		peak = max(peak, h.Stop())
	}
	b.StopTimer()
	const mib = 1 << 20
	b.ReportMetric(float64(peak)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(base)/mib, "base-heap-MiB")
	b.ReportMetric(float64(size)/mib, "zip-MiB")
	if peak >= 100*mib {
		b.Errorf("peak heap %.1f MiB during the export; the target is below 100 MiB", float64(peak)/mib)
	}
}

// BenchmarkDelete50k deletes, through the dashboard, an account whose workspace
// holds 50,000 documents, each with a chunk and a local-embedder vector (3 KiB), and
// reports how long the request took: the whole deletion is one transaction, so this
// is how long its owner waits for the 303.
//
//	go test -run '^$' -bench BenchmarkDelete50k -benchtime 1x ./internal/account/
func BenchmarkDelete50k(b *testing.B) {
	inst := servertest.Start(b, nil)
	ctx := context.Background()
	pool := inst.Server.Pool()
	var took time.Duration
	for range b.N {
		b.StopTimer()
		acct := inst.NewAccount(b, plan.Enterprise)
		for _, sql := range []string{
			`INSERT INTO retrieval_state (workspace_id, version, documents, chunks) VALUES ($1, 1, 50000, 50000)`,
			`INSERT INTO documents (workspace_id, id, text, chunks)
			 SELECT $1, 'doc-' || lpad(i::text, 6, '0'), 'Document ' || i || ' about moraines.', 1 FROM generate_series(1, 50000) AS i`,
			`INSERT INTO chunks (workspace_id, document_id, position, text, tsv)
			 SELECT $1, id, 0, text, to_tsvector('english', text) FROM documents WHERE workspace_id = $1`,
			`INSERT INTO chunk_vectors (chunk_id, workspace_id, model, version, embedding)
			 SELECT id, $1, 'local', 1, decode(repeat(lpad(to_hex(id % 256), 2, '0'), 3077), 'hex') FROM chunks WHERE workspace_id = $1`,
		} {
			if _, err := pool.Exec(ctx, sql, acct.WorkspaceID); err != nil {
				b.Fatal(err)
			}
		}
		br := inst.NewBrowser(b)
		br.LogIn(acct.Email, servertest.Password)
		csrf := br.CSRF("/dashboard/settings")
		b.StartTimer()
		start := time.Now()
		resp, _ := br.Post("/dashboard/settings/delete", url.Values{"_csrf": {csrf}, "current_password": {servertest.Password}})
		took = time.Since(start)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			b.Fatalf("delete: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	b.ReportMetric(took.Seconds(), "s/deletion")
}
