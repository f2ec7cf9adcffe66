package auth

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// Password policy: long enough, and not guessable by the estimate of zxcvbn, which
// knows common passwords, words, names, keyboard patterns, sequences, repeats and
// dates, and is told the person's email and the product's name.
const (
	MinPasswordLen = 10
	// MaxPasswordLen keeps hashing cheap for hostile input.
	MaxPasswordLen = 512
	// MinPasswordScore is zxcvbn's "safely unguessable" (about 10^8 guesses and up);
	// 0–2 fall to an online or a throttled offline attack.
	MinPasswordScore = 3
	// strengthRunes bounds what zxcvbn examines: its matching grows faster than the
	// password, and a strong start is not made weak by what follows it.
	strengthRunes = 100
	// productName is never a good password, nor most of one.
	productName = "cairn"
	// minOwnRunes is how much of a password must be something other than the
	// email address, its parts and the product's name.
	minOwnRunes = 6
)

// ValidatePassword checks a new password for the account with email (which may be
// empty when unknown) and says why one is refused, naming the field "password".
func ValidatePassword(password, email string) error {
	return validatePassword("password", password, email)
}

func validatePassword(field, password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return apperr.Field(field, "is not valid text")
	case n < MinPasswordLen:
		return apperr.Field(field, "use at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return apperr.Field(field, "use at most %d characters", MaxPasswordLen)
	}
	inputs := []string{productName}
	if email = strings.TrimSpace(email); email != "" {
		local, domain, _ := strings.Cut(email, "@")
		inputs = append(inputs, email, local)
		// The parts of the local part and the domain's name ("ada.lovelace@example.com"
		// gives ada, lovelace, example) are as guessable as the whole.
		inputs = append(inputs, strings.FieldsFunc(local+"."+domain, func(r rune) bool { return strings.ContainsRune("._-+@", r) })...)
		folded := strings.ToLower(strings.TrimSpace(password))
		if folded == strings.ToLower(email) || folded == strings.ToLower(local) {
			return apperr.Field(field, "must not be your email address or its name part")
		}
	}
	if strings.EqualFold(strings.TrimSpace(password), productName) {
		return apperr.Field(field, "must not be the name of this product")
	}
	// zxcvbn prices a known word by its rank among the inputs, which is cheap, but
	// it can still call "adalovelace1" safe; whoever knows the email guesses that at once.
	lowered := strings.ToLower(password)
	if rest := without(lowered, inputs); rest != lowered && utf8.RuneCountInString(strings.TrimSpace(rest)) < minOwnRunes {
		return apperr.Field(field, "is too easy to guess: %s. Try a few unrelated words together, or a password manager's suggestion", "it is built from your email address or the name Cairn")
	}
	sample := password
	if n > strengthRunes {
		sample = string([]rune(password)[:strengthRunes])
	}
	res := zxcvbn.PasswordStrength(sample, inputs)
	if res.Score >= MinPasswordScore {
		return nil
	}
	return apperr.Field(field, "is too easy to guess: %s. Try a few unrelated words together, or a password manager's suggestion", weakness(res.Sequence))
}

// without removes every input of three or more letters from lowered, longest first.
func without(lowered string, inputs []string) string {
	parts := make([]string, 0, len(inputs))
	for _, in := range inputs {
		if in = strings.ToLower(in); utf8.RuneCountInString(in) >= 3 {
			parts = append(parts, in)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return len(parts[i]) > len(parts[j]) })
	for _, p := range parts {
		lowered = strings.ReplaceAll(lowered, p, "")
	}
	return lowered
}

// weakness says in words what makes a password guessable: the longest part of it
// that zxcvbn recognised, preferring the person's own details.
func weakness(seq []*match.Match) string {
	var worst *match.Match
	for _, m := range seq {
		if m.Pattern == "bruteforce" {
			continue
		}
		if m.Pattern == "dictionary" && m.DictionaryName == "user_inputs" && len(m.Token) >= 4 {
			return "it is built from your email address or the name Cairn"
		}
		if worst == nil || len(m.Token) > len(worst.Token) {
			worst = m
		}
	}
	if worst == nil {
		return "it is short and simple"
	}
	switch worst.Pattern {
	case "dictionary":
		switch worst.DictionaryName {
		case "passwords":
			return "it is one of the most common passwords"
		case "user_inputs":
			return "it is built from your email address or the name Cairn"
		case "male_names", "female_names", "surnames":
			return "it is mostly a common name"
		}
		return "it is mostly a common word"
	case "repeat":
		return "it repeats the same characters or words"
	case "sequence":
		return "it is a sequence like 12345 or abcde"
	case "spatial":
		return "it is a keyboard pattern like qwerty"
	case "date":
		return "it is mostly a date"
	case "regex":
		return "it is mostly a year"
	}
	return "it follows a common pattern"
}
