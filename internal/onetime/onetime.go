// Package onetime makes the single-use tokens behind emailed links (verification,
// password reset, invitations) and device sign-in: a random value that only the
// recipient ever sees, and its SHA-256, which is all the database keeps.
package onetime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// New returns a fresh token (256 random bits, URL-safe) and the hash to store.
func New() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token)
}

// Hash returns the SHA-256 of a token as presented, for lookup.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
