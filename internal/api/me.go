package api

import (
	"net/http"

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

// me answers who the key is: its workspace and itself.
func (a *API) me(c echo.Context) error {
	p := principal(c)
	return c.JSON(http.StatusOK, meResponse{
		Workspace: meWorkspace{ID: p.WorkspaceID.String(), Name: p.WorkspaceName, Plan: string(p.Plan)},
		Key:       meKey{ID: p.KeyID.String(), Name: p.KeyName, Prefix: p.KeyPrefix},
	})
}
