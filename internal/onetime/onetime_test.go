package onetime_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/cairn-dev/cairn/internal/onetime"
)

func TestNew(t *testing.T) {
	a, ha := onetime.New()
	b, hb := onetime.New()
	if a == b || bytes.Equal(ha, hb) {
		t.Fatal("two tokens are equal")
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(a) {
		t.Fatalf("token %q is not 43 URL-safe characters", a)
	}
	if !bytes.Equal(onetime.Hash(a), ha) || bytes.Contains(ha, []byte(a)) {
		t.Fatal("Hash does not find the stored hash, or the hash holds the token")
	}
}
