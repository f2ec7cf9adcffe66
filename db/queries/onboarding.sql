-- name: OnboardingDismiss :exec
INSERT INTO onboarding_dismissals (workspace_id, dismissed_by) VALUES (@workspace_id, @dismissed_by)
ON CONFLICT (workspace_id) DO NOTHING;

-- name: OnboardingProgress :one
-- The checklist's state beyond what the Overview reads anyway: whether it was
-- dismissed, and whether anyone ever searched or asked successfully, from the
-- usage roll-up (the API's calls and the dashboard's alike; usage_daily is kept,
-- never pruned). The endpoints are passed in, as metering names them.
SELECT
    EXISTS (SELECT 1 FROM onboarding_dismissals o WHERE o.workspace_id = @workspace_id)::bool AS dismissed,
    EXISTS (SELECT 1 FROM usage_daily u
            WHERE u.workspace_id = @workspace_id AND u.endpoint = ANY(@endpoints::text[]) AND u.status < 400)::bool AS searched;
