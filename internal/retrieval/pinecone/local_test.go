//go:build pineconelocal

package pinecone_test

import (
	"net"
	"net/url"
	"os"
	"testing"

	"github.com/cairn-dev/cairn/internal/config"
)

// TestPineconeLocal runs the conformance suite against Pinecone Local, Pinecone's own
// emulator, to check that the in-process fake and the real service agree. It needs
// Docker, so it is behind a build tag:
//
//	docker run -d --name cairn-pinecone -p 5081:5081 -e PORT=5081 -e INDEX_TYPE=serverless \
//	  -e VECTOR_TYPE=dense -e DIMENSION=8 -e METRIC=cosine ghcr.io/pinecone-io/pinecone-index:latest
//	PINECONE_LOCAL_HOST=http://localhost:5081 go test -tags pineconelocal -run TestPineconeLocal ./internal/retrieval/pinecone/
//
// Pinecone Local ignores the API key and serves writes to reads at once; a real
// serverless index is only eventually consistent, so the suite is not meant for one.
func TestPineconeLocal(t *testing.T) {
	host := os.Getenv("PINECONE_LOCAL_HOST")
	if host == "" {
		host = "http://localhost:5081"
	}
	if u, err := url.Parse(host); err != nil {
		t.Fatalf("PINECONE_LOCAL_HOST %q: %v", host, err)
	} else if c, err := net.Dial("tcp", u.Host); err != nil {
		t.Fatalf("Pinecone Local is not reachable at %s (start it as this test's comment says): %v", host, err)
	} else {
		c.Close()
	}
	runConformance(t, open(t, config.Pinecone{APIKey: "pclocal", IndexHost: host}))
}
