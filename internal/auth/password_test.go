package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("HashPassword = %q, want an argon2id PHC string with OWASP parameters", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatalf("the hash contains the password")
	}
	if ok, err := CheckPassword(h, "correct horse battery"); err != nil || !ok {
		t.Fatalf("CheckPassword(right) = %v, %v", ok, err)
	}
	for _, wrong := range []string{"", "correct horse batter", "Correct horse battery", "correct horse battery "} {
		if ok, err := CheckPassword(h, wrong); err != nil || ok {
			t.Fatalf("CheckPassword(%q) = %v, %v; want false", wrong, ok, err)
		}
	}
	if h2 := HashPassword("correct horse battery"); h2 == h {
		t.Fatalf("two hashes of one password are equal: the salt is not random")
	}
}

func TestCheckPasswordReadsParametersFromHash(t *testing.T) {
	// A hash made with other (cheaper) parameters still verifies, so the cost can
	// be raised later without locking anyone out.
	const cheap = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
	h := cheap + b64.EncodeToString(argonKey("pw", "saltsaltsaltsalt", 1, 64, 1))
	if ok, err := CheckPassword(h, "pw"); err != nil || !ok {
		t.Fatalf("CheckPassword(cheap hash) = %v, %v", ok, err)
	}
}

func TestCheckPasswordRejectsGarbage(t *testing.T) {
	for _, h := range []string{"", "plain", "$2a$10$bcrypt", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=x$c2FsdA$aGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA"} {
		if ok, err := CheckPassword(h, "pw"); err == nil || ok {
			t.Fatalf("CheckPassword(%q) = %v, %v; want an error", h, ok, err)
		}
	}
}

func argonKey(password, salt string, t, m uint32, p uint8) []byte {
	return argon2.IDKey([]byte(password), []byte(salt), t, m, p, argonKeyLen)
}
