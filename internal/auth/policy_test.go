package auth

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/apperr"
)

func TestValidatePassword(t *testing.T) {
	const email = "ada.lovelace@example.com"
	for _, tc := range []struct {
		name, password string
		want           string // "" = accepted; else a substring of the reason
	}{
		{"Digits", "1234567890", "most common passwords"},
		{"Sequence", "abcdefghijklmnop", "sequence like 12345"},
		{"TenSpaces", "          ", "repeats the same characters"},
		{"TheEmail", email, "must not be your email address"},
		{"TheEmailInOtherCase", "Ada.Lovelace@Example.com", "must not be your email address"},
		{"TheLocalPart", "ada.lovelace", "must not be your email address"},
		{"BuiltFromTheEmail", "adalovelace1", "built from your email address or the name Cairn"},
		{"TheProductName", "cairncairn", "the name Cairn"},
		{"CommonPassword", "password123", "most common passwords"},
		{"KeyboardWalk", "zxcvbnm,./;lkj", "keyboard pattern"},
		{"Short", "Xk9#q", "use at least 10 characters"},
		{"TooLong", strings.Repeat("Xk9#q", 103), "use at most 512 characters"},
		{"InvalidUTF8", "abcdefghij\xff", "not valid text"},
		{"Passphrase", "correct horse battery", ""},
		{"Random", "v7#Qm2!pLx9@", ""},
		{"LongWithAWeakTail", "a-very-strong pass 42" + strings.Repeat("a", 300), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePassword(tc.password, email)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ValidatePassword(%q) = %v, want accepted", tc.password, err)
				}
				return
			}
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || e.Field != "password" || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("ValidatePassword(%q) = %v, want invalid password saying %q", tc.password, err, tc.want)
			}
		})
	}
}
