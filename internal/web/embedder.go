package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/views"
)

// showEmbedder shows the workspace's embedder and the form to change it.
func (h *Handler) showEmbedder(c echo.Context) error {
	e, err := h.embedderView(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.EmbedderPage(h.shell(c, "Embeddings", "settings"), e))
}

// saveEmbedder changes the workspace's embedder; a change that needs new vectors
// starts re-embedding in the background.
func (h *Handler) saveEmbedder(c echo.Context) error {
	ws := currentWorkspace(c)
	choice := retrieval.EmbedderChoice{
		Provider: retrieval.Provider(c.FormValue("provider")),
		BaseURL:  strings.TrimSpace(c.FormValue("base_url")),
		Model:    strings.TrimSpace(c.FormValue("model")),
		APIKey:   strings.TrimSpace(c.FormValue("api_key")),
	}
	var err error
	if d := strings.TrimSpace(c.FormValue("dimensions")); d != "" {
		if choice.Dimensions, err = strconv.Atoi(d); err != nil {
			err = apperr.Field("dimensions", "must be a whole number")
		}
	}
	if err == nil {
		err = h.Retrieval.ChooseEmbedder(c.Request().Context(), retrieval.Caller{WorkspaceID: ws.ID, Plan: ws.Plan}, choice)
	}
	if e := apperr.As(err); e != nil && (e.Code == apperr.Invalid || e.Code == apperr.Forbidden) {
		v, verr := h.embedderView(c)
		if verr != nil {
			return verr
		}
		// Keep what was typed, except the key.
		v.Provider, v.BaseURL, v.EndpointModel, v.Dimensions = string(choice.Provider), choice.BaseURL, choice.Model, choice.Dimensions
		v.Error, v.ErrorField = e.Message, e.Field
		status := http.StatusUnprocessableEntity
		if e.Code == apperr.Forbidden {
			status = http.StatusForbidden
		}
		return render(c, status, views.EmbedderPage(h.shell(c, "Embeddings", "settings"), v))
	}
	if err != nil {
		return err
	}
	h.flash(c, "Saved. Search switches to the new embedder once every chunk has been embedded with it.")
	return c.Redirect(http.StatusSeeOther, "/dashboard/settings/embedder")
}

// embedderView is the workspace's embedder as the form shows it.
func (h *Handler) embedderView(c echo.Context) (views.Embedder, error) {
	ws := currentWorkspace(c)
	st, err := h.Retrieval.Embedder(c.Request().Context(), retrieval.Caller{WorkspaceID: ws.ID, Plan: ws.Plan})
	if err != nil {
		return views.Embedder{}, err
	}
	serverOpenAI, ownEndpoint := h.Retrieval.Choices()
	return views.Embedder{
		Provider: string(st.Provider), Current: embedderName(st.Provider, st.BaseURL), Model: st.Model,
		BaseURL: st.BaseURL, EndpointModel: st.EndpointModel, Dimensions: st.Dimensions, KeyStored: st.KeyStored,
		ServerOpenAI: serverOpenAI, PlanHasOpenAI: h.Config.Plans.Get(ws.Plan).ServerOpenAIKey, CanStoreKeys: ownEndpoint,
		Switch: switchView(st.Pending),
	}, nil
}

// switchView is a re-embedding in progress as the dashboard shows it, or nil.
func switchView(p *retrieval.EmbedderSwitch) *views.EmbedderSwitch {
	if p == nil {
		return nil
	}
	return &views.EmbedderSwitch{Name: embedderName(p.Provider, p.BaseURL), Done: p.Done, Total: p.Total, Error: p.Error}
}

// embedderName names an embedder for people.
func embedderName(p retrieval.Provider, baseURL string) string {
	switch p {
	case retrieval.ProviderOpenAI:
		return "the server's OpenAI model"
	case retrieval.ProviderCustom:
		return "your endpoint at " + baseURL
	}
	return "the built-in embedder"
}
