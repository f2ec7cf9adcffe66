package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/onetime"
)

// Session is one signed-in browser of a person, as the settings page lists it.
type Session struct {
	ID        uuid.UUID
	UserAgent string
	IP        string
	CreatedAt time.Time
	LastSeen  time.Time
}

// touchEvery bounds how often a session's last-seen time is written.
const touchEvery = time.Minute

// SessionStart records a new signed-in session of userID whose session-store token
// is token (only its SHA-256 is kept), and returns the id the session must carry.
func (s *Service) SessionStart(ctx context.Context, userID uuid.UUID, token, userAgent, ip string) (uuid.UUID, error) {
	id, err := s.q.UserSessionCreate(ctx, dbq.UserSessionCreateParams{
		UserID: userID, TokenHash: onetime.Hash(token), UserAgent: audit.Clean(userAgent, 512), Ip: ip,
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("auth: start session: %w", err)
	}
	return id, nil
}

// SessionAlive reports whether session id of userID has not been ended (by a
// password reset or change, or from the settings page), noting when and from
// where it was last seen. Every replica reads this on every signed-in request, so
// an ended session is refused at once wherever it is used.
func (s *Service) SessionAlive(ctx context.Context, userID, id uuid.UUID, ip string) (bool, error) {
	us, err := s.q.UserSessionGet(ctx, dbq.UserSessionGetParams{ID: id, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: session: %w", err)
	}
	if s.now().Sub(us.LastSeenAt) > touchEvery || us.Ip != ip {
		if err := s.q.UserSessionTouch(ctx, dbq.UserSessionTouchParams{ID: id, Ip: ip}); err != nil {
			return false, fmt.Errorf("auth: session: %w", err)
		}
	}
	return true, nil
}

// Sessions lists userID's sessions, the most recently seen first.
func (s *Service) Sessions(ctx context.Context, userID uuid.UUID) ([]Session, error) {
	rows, err := s.q.UserSessionList(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("auth: sessions: %w", err)
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = Session{ID: r.ID, UserAgent: r.UserAgent, IP: r.Ip, CreatedAt: r.CreatedAt, LastSeen: r.LastSeenAt}
	}
	return out, nil
}

// SessionLogOut forgets session id of userID as its person logs out.
func (s *Service) SessionLogOut(ctx context.Context, userID, id uuid.UUID) error {
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := endSessions(ctx, s.q.WithTx(tx), dbq.UserSessionDeleteParams{UserID: userID, OnlyID: &id})
		return err
	})
	if err != nil {
		return fmt.Errorf("auth: log out: %w", err)
	}
	return nil
}

// SessionEnd ends one of userID's sessions from the settings page: not_found when
// it is not theirs or already ended.
func (s *Service) SessionEnd(ctx context.Context, userID, id uuid.UUID) error {
	return s.endAndRecord(ctx, userID, dbq.UserSessionDeleteParams{UserID: userID, OnlyID: &id}, true)
}

// SessionEndOthers ends every session of userID but current.
func (s *Service) SessionEndOthers(ctx context.Context, userID, current uuid.UUID) error {
	return s.endAndRecord(ctx, userID, dbq.UserSessionDeleteParams{UserID: userID, KeepID: &current}, false)
}

func (s *Service) endAndRecord(ctx context.Context, userID uuid.UUID, p dbq.UserSessionDeleteParams, mustExist bool) error {
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		n, err := endSessions(ctx, q, p)
		if err != nil {
			return err
		}
		if n == 0 {
			if mustExist {
				return apperr.New(apperr.NotFound, "That session has already ended.")
			}
			return nil
		}
		return recordAccount(ctx, q, audit.SessionEnded, &userID, &userID, map[string]any{"sessions": n})
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("auth: end sessions: %w", err)
	}
	return err
}

// EndAllSessionsTx ends every session of userID inside q's transaction, on every
// replica (their next request finds the index row gone), for callers that remove
// the account itself.
func EndAllSessionsTx(ctx context.Context, q *dbq.Queries, userID uuid.UUID) error {
	_, err := endSessions(ctx, q, dbq.UserSessionDeleteParams{UserID: userID})
	return err
}

// endSessions deletes the sessions p names, index rows and the session store's own
// rows, and returns how many ended.
func endSessions(ctx context.Context, q *dbq.Queries, p dbq.UserSessionDeleteParams) (int, error) {
	hashes, err := q.UserSessionDelete(ctx, p)
	if err != nil || len(hashes) == 0 {
		return 0, err
	}
	return len(hashes), q.SessionDeleteByHash(ctx, hashes)
}

// PruneSessions forgets the index rows of sessions the session store has expired:
// idle longer than idle, or started longer than lifetime ago.
func (s *Service) PruneSessions(ctx context.Context, idle, lifetime time.Duration) error {
	now := s.now()
	if _, err := s.q.UserSessionPrune(ctx, dbq.UserSessionPruneParams{IdleBefore: now.Add(-idle), CreatedBefore: now.Add(-lifetime)}); err != nil {
		return fmt.Errorf("auth: prune sessions: %w", err)
	}
	if _, err := s.q.KnownDevicePrune(ctx); err != nil {
		return fmt.Errorf("auth: prune known devices: %w", err)
	}
	return nil
}
