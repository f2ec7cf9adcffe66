package views

import "testing"

func TestSafeHref(t *testing.T) {
	for u, want := range map[string]string{
		"https://example.com/a?b=c":  "https://example.com/a?b=c",
		"http://example.com":         "http://example.com",
		"HTTPS://EXAMPLE.COM/":       "HTTPS://EXAMPLE.COM/",
		"javascript:alert(1)":        "",
		"JavaScript:alert(1)":        "",
		"data:text/html,<script>":    "",
		"//evil.example/path":        "",
		"https:///no-host":           "",
		"/relative":                  "",
		"":                           "",
		" https://example.com":       "",
		"https://example.com/\x00ab": "",
	} {
		if got := SafeHref(u); got != want {
			t.Errorf("SafeHref(%q) = %q, want %q", u, got, want)
		}
	}
}
