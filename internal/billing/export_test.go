package billing

import "time"

// SetClock replaces the service's clock, for tests of grace periods.
func (s *Service) SetClock(now func() time.Time) { s.now = now }
