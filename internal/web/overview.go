package web

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/extension"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// showOverview renders the dashboard home: plan, keys and usage at a glance.
func (h *Handler) showOverview(c echo.Context) error {
	ws := currentWorkspace(c)
	keys, err := h.Keys.List(c.Request().Context(), ws.ID)
	if err != nil {
		return err
	}
	sum, err := h.summary(c)
	if err != nil {
		return err
	}
	p := sum.Plan
	o := views.Overview{
		BaseURL:       h.Config.BaseURL,
		PlanName:      p.Name,
		ActiveKeys:    countActive(keys, time.Now()),
		KeyLimit:      plan.Format(int64(p.Limits.APIKeys)),
		RequestsUsed:  sum.RequestsUsed,
		RequestsLimit: plan.Format(sum.RequestsLimit),
		RequestsPct:   sum.Percent(),
		Documents:     sum.DocumentsUsed,
		DocumentLimit: plan.Format(sum.DocumentsLimit),
	}
	s := h.shell(c, "Overview", "overview")
	// The checklist is for those who can act on it: creating keys needs a member.
	if s.Allowed["POST /dashboard/keys"] {
		pr, err := h.Onboarding.Progress(c.Request().Context(), ws.ID)
		if err != nil {
			return err
		}
		steps := []views.OnboardingStep{
			{ID: "connect", Title: "Connect the extension or create an API key", Done: len(keys) > 0},
			{ID: "save", Title: "Save a first page", Done: sum.DocumentsUsed > 0},
			{ID: "search", Title: "Run a first search", Done: pr.Searched},
		}
		if !pr.Dismissed && views.StepsDone(steps) < len(steps) {
			o.Steps = steps
		}
	}
	return render(c, http.StatusOK, views.OverviewPage(s, o))
}

// dismissOnboarding hides the Overview's checklist for the whole workspace.
func (h *Handler) dismissOnboarding(c echo.Context) error {
	if err := h.Onboarding.Dismiss(c.Request().Context(), currentWorkspace(c).ID, currentUser(c).ID); err != nil {
		return err
	}
	h.flash(c, "Checklist hidden. The API reference and the extension's instructions stay linked in the sidebar.")
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

// downloadExtension sends the browser extension packed for this server: its
// config.js names BASE_URL as the server a fresh install talks to.
func (h *Handler) downloadExtension(c echo.Context) error {
	var zip bytes.Buffer
	if _, err := extension.Pack(&zip, extension.Files, h.Config.BaseURL); err != nil {
		return fmt.Errorf("web: pack the extension: %w", err)
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="cairn-extension.zip"`)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "application/zip", zip.Bytes())
}

// showExtension explains how to install the browser extension and connect it.
func (h *Handler) showExtension(c echo.Context) error {
	return render(c, http.StatusOK, views.ExtensionPage(h.shell(c, "Browser extension", "extension"), h.Config.BaseURL))
}
