package retrieval

import (
	"context"
	"testing"
)

// BenchmarkLocalEmbed embeds chunk-sized texts with the local embedder alone
// (all cores), the CPU part of ingest.
func BenchmarkLocalEmbed(b *testing.B) {
	e := NewLocalEmbedder(DefaultLocalDim)
	co := newCorpus(4)
	texts := make([]string, 256)
	for i := range texts {
		texts[i] = co.text(800)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := e.Embed(context.Background(), texts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(texts))/b.Elapsed().Seconds(), "chunks/s")
}
