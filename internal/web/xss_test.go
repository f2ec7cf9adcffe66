package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestDocumentsPageRendersStoredFieldsInert stores documents whose titles and URLs
// are script (anyone holding a key can store them) and checks the Documents page
// and its search show them as text and never as a link that runs script.
func TestDocumentsPageRendersStoredFieldsInert(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	resp := inst.Do(t, http.MethodPost, "/v1/documents", acct.Key, `{"documents":[
		{"id":"js","title":"<img src=x onerror=alert(1)>","url":"javascript:alert(1)","text":"kettle one"},
		{"id":"js-case","title":"case","url":"JavaScript:alert(2)","text":"kettle two"},
		{"id":"js-space","title":"space","url":" javascript:alert(3)","text":"kettle three"},
		{"id":"data","title":"data","url":"data:text/html,<script>alert(4)</script>","text":"kettle four"},
		{"id":"vb","title":"vb","url":"vbscript:msgbox(5)","text":"kettle five"},
		{"id":"ok","title":"Fine \"quoted\" title","url":"https://example.com/a?b=1&c=<2>","text":"kettle six"}]}`)
	if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("store: %d %s", resp.StatusCode, body)
	}
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	href := regexp.MustCompile(`(?i)href="([^"]*)"`)
	for _, page := range []string{"/dashboard/documents", "/dashboard/documents/search?q=kettle"} {
		t.Run("NoScriptIn"+strings.ReplaceAll(page, "/", "_"), func(t *testing.T) {
			status, body := b.Get(page)
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			for _, m := range href.FindAllStringSubmatch(body, -1) {
				u := strings.ToLower(strings.TrimSpace(m[1]))
				if !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "#") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
					t.Errorf("link to %q", m[1])
				}
			}
			if strings.Contains(body, "<img src=x") || strings.Contains(body, "<script>alert") {
				t.Errorf("a stored field is rendered as markup")
			}
			if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
				t.Errorf("the hostile title is not shown as text")
			}
		})
	}
	t.Run("HTTPLinksStay", func(t *testing.T) {
		_, body := b.Get("/dashboard/documents")
		if !strings.Contains(body, `href="https://example.com/a?b=1&amp;c=%3C2%3E"`) && !strings.Contains(body, `href="https://example.com/a?b=1&amp;c=&lt;2&gt;"`) {
			t.Fatalf("the https link is missing or mangled:\n%s", body)
		}
	})
}
