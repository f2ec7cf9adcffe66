package secretbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
)

func newKeyBytes(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	old, cur := newKeyBytes(t), newKeyBytes(t)
	secret, ws := []byte("sk-workspace-secret"), []byte("workspace-1")

	t.Run("RoundTrip", func(t *testing.T) {
		b, _ := New(cur, nil)
		sealed, err := b.Seal(secret, ws)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, secret) {
			t.Fatal("the sealed value holds the plaintext")
		}
		got, stale, err := b.Open(sealed, ws)
		if err != nil || stale || !bytes.Equal(got, secret) {
			t.Fatalf("Open = %q, stale %v, %v", got, stale, err)
		}
	})
	t.Run("EachSealIsDifferent", func(t *testing.T) {
		b, _ := New(cur, nil)
		x, _ := b.Seal(secret, ws)
		y, _ := b.Seal(secret, ws)
		if bytes.Equal(x, y) {
			t.Fatal("two seals of one secret are equal: the nonce repeats")
		}
	})
	t.Run("OtherBindingFails", func(t *testing.T) {
		b, _ := New(cur, nil)
		sealed, _ := b.Seal(secret, ws)
		if _, _, err := b.Open(sealed, []byte("workspace-2")); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened under another workspace: %v", err)
		}
	})
	t.Run("AlteredFails", func(t *testing.T) {
		b, _ := New(cur, nil)
		sealed, _ := b.Seal(secret, ws)
		sealed[len(sealed)-1] ^= 1
		if _, _, err := b.Open(sealed, ws); !errors.Is(err, ErrOpen) {
			t.Fatalf("an altered value opened: %v", err)
		}
	})
	t.Run("RotationOpensOldAsStale", func(t *testing.T) {
		before, _ := New(old, nil)
		sealed, _ := before.Seal(secret, ws)
		after, err := New(cur, old)
		if err != nil {
			t.Fatal(err)
		}
		got, stale, err := after.Open(sealed, ws)
		if err != nil || !stale || !bytes.Equal(got, secret) {
			t.Fatalf("Open after rotation = %q, stale %v, %v; want the secret, stale", got, stale, err)
		}
		resealed, _ := after.Seal(got, ws)
		if _, stale, err := after.Open(resealed, ws); err != nil || stale {
			t.Fatalf("resealed value: stale %v, %v", stale, err)
		}
	})
	t.Run("WithoutTheOldKeyFails", func(t *testing.T) {
		before, _ := New(old, nil)
		sealed, _ := before.Seal(secret, ws)
		after, _ := New(cur, nil)
		if _, _, err := after.Open(sealed, ws); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened without its key: %v", err)
		}
	})
	t.Run("NoKeyRefuses", func(t *testing.T) {
		b, _ := New(nil, nil)
		if _, err := b.Seal(secret, ws); !errors.Is(err, ErrNoKey) {
			t.Fatalf("Seal without a key: %v", err)
		}
	})
	t.Run("PreviousWithoutCurrentIsRefused", func(t *testing.T) {
		if _, err := New(nil, old); err == nil {
			t.Fatal("New accepted a previous key without a current one")
		}
	})
}

func TestParseKey(t *testing.T) {
	k := bytes.Repeat([]byte{0xab}, KeySize)
	for name, s := range map[string]string{
		"Hex":        hex.EncodeToString(k),
		"Base64":     base64.StdEncoding.EncodeToString(k),
		"Base64Raw":  base64.RawStdEncoding.EncodeToString(k),
		"Base64URL":  base64.URLEncoding.EncodeToString(k),
		"Whitespace": " " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseKey(s)
			if err != nil || !bytes.Equal(got, k) {
				t.Fatalf("ParseKey(%q) = %x, %v", s, got, err)
			}
		})
	}
	for name, s := range map[string]string{
		"Short":    base64.StdEncoding.EncodeToString(k[:16]),
		"NotAKey":  "correct horse battery staple",
		"Empty":    "",
		"HexShort": hex.EncodeToString(k[:31]),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKey(s); err == nil {
				t.Fatalf("ParseKey(%q) accepted it", s)
			}
		})
	}
}
