package api

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
)

type meResponse struct {
	Workspace meWorkspace `json:"workspace"`
	Key       meKey       `json:"key"`
}

type meWorkspace struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Plan string `json:"plan"`
}

type meKey struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
}

// meBodies holds the encoded answer per principal. /v1/me is the extension's
// connection check, called far more often than anything changes, and its answer
// is a function of the principal alone: a renamed workspace or a new plan is a
// new principal, so nothing here goes stale. One small entry per key seen.
var meBodies sync.Map // apikey.Principal -> []byte

// me answers who the key is: its workspace and itself.
func (a *API) me(c echo.Context) error {
	p := principal(c)
	body, ok := meBodies.Load(p)
	if !ok {
		b, err := json.Marshal(meResponse{
			Workspace: meWorkspace{ID: p.WorkspaceID.String(), Name: p.WorkspaceName, Plan: string(p.Plan)},
			Key:       meKey{ID: p.KeyID.String(), Name: p.KeyName, Prefix: p.KeyPrefix},
		})
		if err != nil {
			return err
		}
		body, _ = meBodies.LoadOrStore(p, b)
	}
	return c.JSONBlob(http.StatusOK, body.([]byte))
}
