package apikey

import (
	"regexp"
	"strings"
	"testing"
)

// apiRegex is the key pattern published in shared/API.md.
var apiRegex = regexp.MustCompile(`^ck_live_[0-9A-Za-z]{38}$`)

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		k := Generate()
		if !apiRegex.MatchString(k) {
			t.Fatalf("Generate() = %q, does not match %s", k, apiRegex)
		}
		if !WellFormed(k) {
			t.Fatalf("WellFormed(Generate()) = false for %q", k)
		}
		if seen[k] {
			t.Fatalf("Generate() repeated %q", k)
		}
		seen[k] = true
		if got, want := Display(k), k[:12]; got != want {
			t.Fatalf("Display(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestChecksumIsCRC32OfRandomPart(t *testing.T) {
	// Fixed vector so the checksum can be reproduced by other tools (e.g. a
	// secret scanner): CRC-32/IEEE of 32 zeros is 0xA0F292D0 = 2700251856, which is
	// "2wjyrI" in base62 with 0-9A-Za-z digits.
	random := strings.Repeat("0", 32)
	if got, want := string(checksum([]byte(random))), "2wjyrI"; got != want {
		t.Fatalf("checksum(32 zeros) = %q, want %q", got, want)
	}
	if !WellFormed(Prefix + random + "2wjyrI") {
		t.Fatalf("WellFormed rejects the fixed vector")
	}
}

func TestWellFormedRejects(t *testing.T) {
	good := Generate()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for _, tc := range []struct{ name, key string }{
		{"Empty", ""},
		{"PrefixOnly", Prefix},
		{"TestPrefix", "ck_test_" + good[len(Prefix):]},
		{"UpperPrefix", "CK_LIVE_" + good[len(Prefix):]},
		{"OneShort", good[:len(good)-1]},
		{"OneLong", good + "a"},
		{"WrongChecksum", flip(good, len(good)-1)},
		{"ChangedRandomPart", flip(good, len(Prefix)+3)},
		{"NonBase62", good[:20] + "-" + good[21:]},
		{"NonASCII", good[:20] + "é" + good[22:]},
		{"LeadingSpace", " " + good[:len(good)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if WellFormed(tc.key) {
				t.Fatalf("WellFormed(%q) = true", tc.key)
			}
		})
	}
}

func FuzzWellFormed(f *testing.F) {
	f.Add(Generate())
	f.Add("ck_live_")
	f.Fuzz(func(t *testing.T, s string) {
		if WellFormed(s) && !apiRegex.MatchString(s) {
			t.Fatalf("WellFormed accepts %q, which the documented regex rejects", s)
		}
	})
}
