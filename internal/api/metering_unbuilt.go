//go:build nometering

package api

// meteringBuilt is false in this build: /v1 requests are neither recorded, rate
// limited nor counted against a quota. It exists only so that cmd/cairn-load can
// measure what metering costs; never deploy it.
const meteringBuilt = false
