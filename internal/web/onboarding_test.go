package web_test

import (
	"archive/zip"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// stepDone reads whether the Overview's checklist ticks step id ("" when the
// checklist is not shown).
func stepDone(page, id string) string {
	m := regexp.MustCompile(`data-step="` + id + `" data-done="(true|false)"`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestOnboardingChecklist: a new workspace's Overview lists the first steps, each
// ticked from what really exists (a key, a stored document, a search that ran),
// with links to the extension's instructions and the API reference; the list goes
// once every step is done.
func TestOnboardingChecklist(t *testing.T) {
	inst := servertest.Start(t, nil)
	b := inst.NewBrowser(t)
	b.SignUp("newcomer@example.com", servertest.Password)
	inst.VerifyEmail(t, "newcomer@example.com")

	_, page := b.Get("/dashboard")
	if !strings.Contains(page, `data-testid="onboarding"`) || !strings.Contains(page, "0 of 3 done") {
		t.Fatalf("a new workspace has no checklist:\n%s", page)
	}
	for _, id := range []string{"connect", "save", "search"} {
		if got := stepDone(page, id); got != "false" {
			t.Errorf("step %s of a new workspace: done=%q, want false", id, got)
		}
	}
	for _, link := range []string{`href="/dashboard/extension"`, `href="/docs"`, `href="/dashboard/keys"`, `href="/dashboard/documents"`} {
		if !strings.Contains(page, link) {
			t.Errorf("the Overview lacks the link %s", link)
		}
	}
	if strings.Contains(page, "POST /v1/") {
		t.Error("the Overview tells a person to send an API request")
	}

	// A key, made through the keys page.
	status, keys := b.Follow(b.Submit("/dashboard/keys", "/dashboard/keys", map[string][]string{"name": {"script"}}))
	key := servertest.KeyRe.FindString(keys)
	if status != http.StatusOK || key == "" {
		t.Fatalf("create a key: %d", status)
	}
	_, page = b.Get("/dashboard")
	if stepDone(page, "connect") != "true" || stepDone(page, "save") != "false" || !strings.Contains(page, "1 of 3 done") {
		t.Fatalf("after a key: connect %q, save %q", stepDone(page, "connect"), stepDone(page, "save"))
	}

	call(t, inst, "POST", "/v1/documents", key, teaDocs, http.StatusOK)
	_, page = b.Get("/dashboard")
	if stepDone(page, "save") != "true" || stepDone(page, "search") != "false" {
		t.Fatalf("after a document: save %q, search %q", stepDone(page, "save"), stepDone(page, "search"))
	}

	// A search that finds nothing still counts as run; one refused does not.
	call(t, inst, "POST", "/v1/search", key, `{"query":""}`, http.StatusBadRequest)
	servertest.Eventually(t, func() bool {
		_, usage := b.Get("/dashboard/usage")
		return strings.Contains(usage, "Bad Request")
	}, "the refused search never reached the usage page")
	if _, page = b.Get("/dashboard"); stepDone(page, "search") != "false" {
		t.Fatal("a refused search ticked the search step")
	}
	b.Get("/dashboard/documents/search?q=qzxvqzxv")
	servertest.Eventually(t, func() bool {
		_, page = b.Get("/dashboard")
		return !strings.Contains(page, `data-testid="onboarding"`)
	}, "the checklist stays after every step is done")
}

// TestOnboardingDismissed: hiding the checklist hides it for the workspace; a
// viewer, who can act on none of it, never sees it.
func TestOnboardingDismissed(t *testing.T) {
	inst := servertest.Start(t, nil)
	owner := inst.NewAccount(t, plan.Enterprise)
	viewer := inst.NewAccount(t, plan.Free)
	inst.Join(t, viewer, owner.WorkspaceID, "viewer")
	b := inst.NewBrowser(t)
	b.LogIn(owner.Email, servertest.Password)
	if _, page := b.Get("/dashboard"); !strings.Contains(page, `data-testid="onboarding"`) || !strings.Contains(page, `action="/dashboard/onboarding/dismiss"`) {
		t.Fatalf("no checklist to dismiss:\n%s", page)
	}

	vb := inst.NewBrowser(t)
	vb.LogIn(viewer.Email, servertest.Password)
	vb.SwitchTo(owner.WorkspaceID)
	if _, page := vb.Get("/dashboard"); strings.Contains(page, `data-testid="onboarding"`) {
		t.Fatal("a viewer is shown a checklist of things they may not do")
	}
	if resp, _ := vb.Submit("/dashboard", "/dashboard/onboarding/dismiss", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer dismissing: %d, want 403", resp.StatusCode)
	}

	resp, _ := b.Submit("/dashboard", "/dashboard/onboarding/dismiss", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("dismiss: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, page := b.Get("/dashboard"); strings.Contains(page, `data-testid="onboarding"`) {
		t.Fatal("the checklist is still shown after it was dismissed")
	}
	other := inst.NewBrowser(t)
	other.LogIn(owner.Email, servertest.Password)
	if _, page := other.Get("/dashboard"); strings.Contains(page, `data-testid="onboarding"`) {
		t.Fatal("the checklist came back in another session")
	}
	if resp, _ := b.Submit("/dashboard", "/dashboard/onboarding/dismiss", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dismissing twice: %d", resp.StatusCode)
	}
}

// TestExtensionPage explains the extension with this server's address to copy,
// and offers the extension packed for this server.
func TestExtensionPage(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	status, page := b.Get("/dashboard/extension")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{`id="server-address"`, `data-copy="server-address"`, `href="/activate"`, "Sign in with your Cairn account", `aria-current="page">Browser extension`, `href="/dashboard/extension/download"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the extension page lacks %q", want)
		}
	}

	resp, err := b.Client.Get(inst.URL + "/dashboard/extension/download")
	if err != nil {
		t.Fatal(err)
	}
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="cairn-extension.zip"`) {
		t.Fatalf("download: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("the download is not a zip: %v", err)
	}
	if _, err := fs.Stat(zr, "manifest.json"); err != nil {
		t.Fatalf("the zip holds no manifest.json: %v", err)
	}
	config, err := fs.ReadFile(zr, "config.js")
	if want := `globalThis.CAIRN_DEFAULT_BACKEND = "` + inst.URL + `";`; err != nil || !strings.Contains(string(config), want) {
		t.Fatalf("the zip's config.js does not name this server (%s; %v):\n%s", want, err, config)
	}
	anon := inst.NewBrowser(t)
	if resp, err := anon.Client.Get(inst.URL + "/dashboard/extension/download"); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a visitor downloading: %v %v, want a redirect to log in", resp.StatusCode, err)
	}
}
