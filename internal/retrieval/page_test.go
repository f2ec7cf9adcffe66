package retrieval

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// The pages under testdata/pages were written for these tests in the shape of
// real ones (a blog article, a Sphinx documentation page, a Discourse thread):
// navigation, banners, share bars, sidebars, reply boxes and footers around the
// text a reader came for.
func TestExtractPage(t *testing.T) {
	for _, tc := range []struct {
		file, title string
		keep, drop  []string
	}{
		{
			file:  "article.html",
			title: "Why Glaciers Are Blue",
			keep: []string{
				"Stand at the foot of a glacier and the ice in its crevasses glows",
				"Old ice, fewer bubbles",
				"Ice that has lost its bubbles lets light travel a long way through it",
				"lost its reds along the way.",
			},
			drop: []string{"We use cookies", "Subscribe", "Share on Mastodon", "Related stories", "How moraines form",
				"All rights reserved", "dataLayer", "Get the Field Notebook in your inbox"},
		},
		{
			file:  "docs.html",
			title: "Configuring retries — Harbor CLI 3.2 documentation",
			keep: []string{
				"Harbor retries a request that fails with a network error or a 5xx response.",
				"attempts = 5\nbackoff = \"exponential\"", // code keeps its lines
				"A 429 response is retried after the number of seconds in its Retry-After header",
				"--no-retry is the same as --retries=1.",
			},
			drop: []string{"Search docs", "Installation", "Quick start", "Built with Sphinx", "Previous", "Docs »"},
		},
		{
			file:  "forum.html",
			title: "Sourdough starter smells like nail polish remover — is it dead?",
			keep: []string{
				"For the last two days it smells sharply of nail polish remover",
				"It is not dead, it is hungry.",
				"one part starter to five parts flour and five parts water",
				"Update: I switched to two feeds a day",
			},
			drop: []string{"Log in", "Sign up", "Suggested topics", "Why is my crumb gummy?", "Type here.", "Powered by Discourse", "♥"},
		},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".html"), func(t *testing.T) {
			raw, err := os.ReadFile("testdata/pages/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ExtractPage(string(raw), "https://example.org/page")
			if err != nil {
				t.Fatal(err)
			}
			if p.Title != tc.title {
				t.Errorf("title %q, want %q", p.Title, tc.title)
			}
			for _, s := range tc.keep {
				if !strings.Contains(p.Text, s) {
					t.Errorf("the text lacks %q", s)
				}
			}
			for _, s := range tc.drop {
				if strings.Contains(p.Text, s) {
					t.Errorf("the text keeps the page furniture %q", s)
				}
			}
			// Paragraphs stay paragraphs, which the chunker cuts between.
			if strings.Count(p.Text, "\n\n") < 4 || strings.Contains(p.Text, "\n\n\n") || strings.Contains(p.Text, "  ") {
				t.Errorf("paragraphs are not one blank line apart:\n%s", p.Text)
			}
			if t.Failed() {
				t.Logf("extracted:\n%s", p.Text)
			}
		})
	}
}

func TestExtractPageFailures(t *testing.T) {
	huge := "<html><body><article>" + strings.Repeat("<p>"+strings.Repeat("Word after word of a very long page. ", 40)+"</p>", 800) + "</article></body></html>"
	for _, tc := range []struct {
		name, html string
		want       error
	}{
		// An app's page before its scripts ran: a title and an empty mount point.
		{"EmptyAppShell", `<html><head><title>Inbox</title><script src="/app.js"></script><style>body{margin:0}</style></head><body><div id="root"></div><noscript>You need to enable JavaScript to run this app.</noscript></body></html>`, errNoReadableText},
		{"NotHTMLAtAll", "\x00\x01\x02", errNoReadableText},
		{"TextOverOneMiB", huge, errPageTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ExtractPage(tc.html, "https://example.org/"); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCanonicalURL(t *testing.T) {
	const page = "https://Example.org:443/a/b?utm_source=feed&z=1&a=2&fbclid=XYZ#section-2"
	for _, tc := range []struct{ name, url, html, want string }{
		{"Normalised", page, "", "https://example.org/a/b?a=2&z=1"},
		{"EmptyPath", "http://example.org", "", "http://example.org/"},
		{"DefaultPortDropped", "http://example.org:80/x", "", "http://example.org/x"},
		{"OtherPortKept", "http://example.org:8080/x", "", "http://example.org:8080/x"},
		{"CanonicalLinkOnTheSameHost", page, `<html><head><link rel="canonical" href="/a/b/"></head><body>x</body></html>`, "https://example.org/a/b/"},
		{"CanonicalLinkWithOtherRels", page, `<link href="https://example.org/c" rel="alternate canonical">`, "https://example.org/c"},
		{"CanonicalLinkToAnotherHostIgnored", page, `<link rel="canonical" href="https://elsewhere.example/a/b">`, "https://example.org/a/b?a=2&z=1"},
		{"CanonicalLinkInTheBodyIgnored", page, `<html><body><link rel="canonical" href="/other"></body></html>`, "https://example.org/a/b?a=2&z=1"},
		{"JavascriptCanonicalIgnored", page, `<link rel="canonical" href="javascript:alert(1)">`, "https://example.org/a/b?a=2&z=1"},
		{"NotAURL", "just words", "", "just words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanonicalURL(tc.url, tc.html); got != tc.want {
				t.Fatalf("CanonicalURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStableID(t *testing.T) {
	a, b := StableID("https://example.org/a"), StableID("https://example.org/b")
	if a != StableID("https://example.org/a") || a == b {
		t.Fatalf("StableID is not a function of the URL: %q %q", a, b)
	}
	if !strings.HasPrefix(a, "url_") || len(a) != 36 || ValidateID(a) != nil {
		t.Fatalf("StableID = %q", a)
	}
}

func TestTidyText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  a  b \n\n\n\n c ", "a b\n\nc"},
		{"one\ntwo", "one\ntwo"},
		{"\n\n x \n", "x"},
		{"nul\x00here", "nulhere"},
	} {
		if got := tidyText(tc.in); got != tc.want {
			t.Errorf("tidyText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
