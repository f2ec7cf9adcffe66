// Package secretbox seals the few secrets Cairn must be able to read back (a
// workspace's own embedding endpoint key) with AES-256-GCM under ENCRYPTION_KEY.
// Keys rotate: with ENCRYPTION_KEY_PREVIOUS set to the old key, what the old key
// sealed still opens and is reported stale, so callers seal it again under the
// current one.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an encryption key: AES-256.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change.
const version = 1

// ErrNoKey is returned by Seal and Open when no ENCRYPTION_KEY is configured.
var ErrNoKey = errors.New("secretbox: ENCRYPTION_KEY is not set")

// ErrOpen is returned when a sealed value opens under no configured key: it was
// sealed under a key no longer configured, or it was altered.
var ErrOpen = errors.New("secretbox: cannot open: sealed under a key that is not configured, or altered")

// Box seals and opens secrets. The zero value (no key) refuses both.
type Box struct {
	current, previous *key
}

type key struct {
	id   [4]byte // the first bytes of the key's SHA-256: which key sealed a value
	aead cipher.AEAD
}

// New returns a Box sealing under current and opening under current or previous
// (nil: none). A nil current gives a Box that refuses to seal or open.
func New(current, previous []byte) (*Box, error) {
	b := &Box{}
	var err error
	if current != nil {
		if b.current, err = newKey(current); err != nil {
			return nil, fmt.Errorf("secretbox: ENCRYPTION_KEY: %w", err)
		}
	}
	if previous != nil {
		if current == nil {
			return nil, errors.New("secretbox: ENCRYPTION_KEY_PREVIOUS is set without ENCRYPTION_KEY")
		}
		if b.previous, err = newKey(previous); err != nil {
			return nil, fmt.Errorf("secretbox: ENCRYPTION_KEY_PREVIOUS: %w", err)
		}
	}
	return b, nil
}

func newKey(k []byte) (*key, error) {
	if len(k) != KeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", KeySize, len(k))
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(k)
	out := &key{aead: aead}
	copy(out.id[:], sum[:4])
	return out, nil
}

// ParseKey reads a 32-byte key written as 64 hex digits or as base64 (standard or
// URL alphabet, padded or not), as `openssl rand -base64 32` prints one.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes; want %d (openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("is neither 64 hex digits nor base64 of %d bytes (openssl rand -base64 32)", KeySize)
}

// Enabled reports whether the box has a key to seal with.
func (b *Box) Enabled() bool { return b != nil && b.current != nil }

// Seal encrypts plaintext under the current key. binding (a workspace id) is
// authenticated but not stored: the value opens only with the same binding, so a
// sealed value copied to another row is useless.
func (b *Box) Seal(plaintext, binding []byte) ([]byte, error) {
	if !b.Enabled() {
		return nil, ErrNoKey
	}
	k := b.current
	out := make([]byte, 1+len(k.id)+k.aead.NonceSize(), 1+len(k.id)+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	nonce := out[1+len(k.id):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return k.aead.Seal(out, nonce, plaintext, binding), nil
}

// Open decrypts what Seal returned with the same binding. stale reports that the
// previous key sealed it: seal it again to finish a rotation.
func (b *Box) Open(sealed, binding []byte) (plaintext []byte, stale bool, err error) {
	if !b.Enabled() {
		return nil, false, ErrNoKey
	}
	if len(sealed) < 1+4 || sealed[0] != version {
		return nil, false, ErrOpen
	}
	for _, k := range []*key{b.current, b.previous} {
		if k == nil || string(sealed[1:5]) != string(k.id[:]) {
			continue
		}
		body := sealed[5:]
		if len(body) < k.aead.NonceSize() {
			return nil, false, ErrOpen
		}
		pt, err := k.aead.Open(nil, body[:k.aead.NonceSize()], body[k.aead.NonceSize():], binding)
		if err != nil {
			return nil, false, ErrOpen
		}
		return pt, k == b.previous, nil
	}
	return nil, false, ErrOpen
}
