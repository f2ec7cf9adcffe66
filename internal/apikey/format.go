// Package apikey mints, lists, revokes and verifies workspace API keys.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"math/big"
)

// Key format (shared/API.md): "ck_live_" + 32 random base62 characters + a 6-character
// base62 CRC32 of those 32, so a leaked key can be recognised offline and a mistyped
// one rejected before any lookup.
const (
	Prefix      = "ck_live_"
	randomLen   = 32
	checksumLen = 6
	// Len is the length of a whole key.
	Len = len(Prefix) + randomLen + checksumLen
	// DisplayLen is how many leading characters identify a key after creation.
	DisplayLen = 12
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Generate returns a new random key.
func Generate() string {
	b := make([]byte, Len)
	copy(b, Prefix)
	max := big.NewInt(int64(len(base62)))
	for i := len(Prefix); i < len(Prefix)+randomLen; i++ {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("apikey: crypto/rand failed: " + err.Error())
		}
		b[i] = base62[n.Int64()]
	}
	copy(b[len(Prefix)+randomLen:], checksum(b[len(Prefix):len(Prefix)+randomLen]))
	return string(b)
}

func checksum(random []byte) []byte {
	n := crc32.ChecksumIEEE(random)
	out := make([]byte, checksumLen)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return out
}

// WellFormed reports whether key has the right prefix, alphabet, length and checksum.
func WellFormed(key string) bool {
	if len(key) != Len || key[:len(Prefix)] != Prefix {
		return false
	}
	for i := len(Prefix); i < Len; i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return string(checksum([]byte(key[len(Prefix):len(Prefix)+randomLen]))) == key[len(Prefix)+randomLen:]
}

// Hash returns the SHA-256 of key, which is all the database keeps of it.
func Hash(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// Display returns the part of a key that may be shown after creation.
func Display(key string) string { return key[:DisplayLen] }
