package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/onetime"
)

// KnownDeviceTTL is how long a browser stays known to an account after its last
// log-in there.
const KnownDeviceTTL = 180 * 24 * time.Hour

// rememberDevice makes a known-device token for a browser that just logged in to
// userID, storing only its hash.
func rememberDevice(ctx context.Context, q *dbq.Queries, userID uuid.UUID, now time.Time) (string, error) {
	token, hash := onetime.New()
	err := q.KnownDeviceCreate(ctx, dbq.KnownDeviceCreateParams{Hash: hash, UserID: userID, ExpiresAt: now.Add(KnownDeviceTTL)})
	return token, err
}

// knownDevice reports whether token is a known-device token of userID, extending
// its life when it is.
func (s *Service) knownDevice(ctx context.Context, userID uuid.UUID, token string) (bool, error) {
	if len(token) > 128 {
		return false, nil
	}
	_, err := s.q.KnownDeviceUse(ctx, dbq.KnownDeviceUseParams{Hash: onetime.Hash(token), UserID: userID, ExpiresAt: s.now().Add(KnownDeviceTTL)})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: known device: %w", err)
	}
	return true, nil
}

// RememberDevice makes a known-device token for a browser where userID just
// signed in some other way than Login (signing up).
func (s *Service) RememberDevice(ctx context.Context, userID uuid.UUID) (string, error) {
	token, err := rememberDevice(ctx, s.q, userID, s.now())
	if err != nil {
		return "", fmt.Errorf("auth: remember device: %w", err)
	}
	return token, nil
}
