package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/retrieval"
)

type meResponse struct {
	Workspace meWorkspace `json:"workspace"`
	Key       meKey       `json:"key"`
	Embedder  meEmbedder  `json:"embedder"`
	// Role is what the key may do: its creator's role in the workspace.
	Role string `json:"role"`
}

type meEmbedder struct {
	Provider  string    `json:"provider"`
	Model     string    `json:"model"`
	Switching *meSwitch `json:"switching"` // null when none: every field is always sent
}

type meSwitch struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Done     int64  `json:"done"`
	Total    int64  `json:"total"`
}

type meWorkspace struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Plan string `json:"plan"`
}

type meKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedBy *meCreator `json:"created_by"`
}

// meCreator is the member who made a key; null for an operator's key.
type meCreator struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// meBodies holds the encoded answer per principal. /v1/me is the extension's
// connection check, called far more often than anything changes, and its answer
// is a function of the principal and the workspace's embedder: a renamed workspace
// or a new plan is a new principal, and an answer is kept only while the embedder
// it names is the workspace's (which the retrieval service caches for a second or
// two). One small entry per key seen.
var meBodies sync.Map // apikey.Principal -> meBody

type meBody struct {
	embedder retrieval.EmbedderStatus
	body     []byte
}

// me answers who the key is: its workspace, itself, who made it, the role it acts
// with and the workspace's embedder.
func (a *API) me(c echo.Context) error {
	p := principal(c)
	emb, err := a.Retrieval.CachedEmbedder(c.Request().Context(), retrieval.Caller{WorkspaceID: p.WorkspaceID, Plan: p.Plan})
	if err != nil {
		return err
	}
	if v, ok := meBodies.Load(p); ok && v.(meBody).embedder.Equal(emb) {
		return c.JSONBlob(http.StatusOK, v.(meBody).body)
	}
	r := meResponse{
		Workspace: meWorkspace{ID: p.WorkspaceID.String(), Name: p.WorkspaceName, Plan: string(p.Plan)},
		Key:       meKey{ID: p.KeyID.String(), Name: p.KeyName, Prefix: p.KeyPrefix},
		Embedder:  meEmbedder{Provider: string(emb.Provider), Model: emb.Model},
		Role:      p.Role,
	}
	if p.CreatorID != uuid.Nil {
		r.Key.CreatedBy = &meCreator{ID: p.CreatorID.String(), Email: p.CreatorEmail}
	}
	if s := emb.Pending; s != nil {
		r.Embedder.Switching = &meSwitch{Provider: string(s.Provider), Model: s.Model, Done: s.Done, Total: s.Total}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	meBodies.Store(p, meBody{embedder: emb, body: b})
	return c.JSONBlob(http.StatusOK, b)
}
