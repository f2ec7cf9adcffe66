//go:build !nometering

package api

// meteringBuilt is false only in a binary built with -tags nometering, which
// cmd/cairn-load's -metered comparison measures against; never deploy one.
const meteringBuilt = true
