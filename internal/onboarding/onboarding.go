// Package onboarding follows a workspace's first steps for the Overview's
// getting-started checklist: a key or a signed-in extension, a saved page, a first
// search. The steps are read from what exists; only a dismissal is stored.
package onboarding

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// SearchEndpoints are the calls, as usage records them ("METHOD route"), that
// count as a first search: the API's search and answer and the dashboard's.
var SearchEndpoints = []string{
	"POST /v1/search", "POST /v1/answer",
	"GET /dashboard/documents/search", "POST /dashboard/documents/ask",
}

// Service reads and dismisses the checklist.
type Service struct {
	q *dbq.Queries
}

// NewService returns a Service on pool.
func NewService(pool *pgxpool.Pool) *Service {
	return &Service{q: dbq.New(pool)}
}

// Progress is what the checklist needs beyond the Overview's own counts.
type Progress struct {
	// Dismissed is set once someone in the workspace hid the checklist.
	Dismissed bool
	// Searched is set once a search or question succeeded, through the API or
	// the dashboard (usage is written within a second or so of the call).
	Searched bool
}

// Progress returns workspace ws's progress.
func (s *Service) Progress(ctx context.Context, ws uuid.UUID) (Progress, error) {
	row, err := s.q.OnboardingProgress(ctx, dbq.OnboardingProgressParams{WorkspaceID: ws, Endpoints: SearchEndpoints})
	if err != nil {
		return Progress{}, fmt.Errorf("onboarding: progress: %w", err)
	}
	return Progress{Dismissed: row.Dismissed, Searched: row.Searched}, nil
}

// Dismiss hides the checklist of workspace ws for everyone in it; by is who did.
// Dismissing twice is no error.
func (s *Service) Dismiss(ctx context.Context, ws, by uuid.UUID) error {
	if err := s.q.OnboardingDismiss(ctx, dbq.OnboardingDismissParams{WorkspaceID: ws, DismissedBy: &by}); err != nil {
		return fmt.Errorf("onboarding: dismiss: %w", err)
	}
	return nil
}
