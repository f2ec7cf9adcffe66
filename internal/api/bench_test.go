package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// BenchmarkHotPath serves requests through the whole handler in process (no
// network), for profiling what each /v1 request costs over /healthz.
func BenchmarkHotPath(b *testing.B) {
	inst := servertest.Start(b, map[string]string{"CAIRN_PLAN_PRO_RATE_PER_MINUTE": "1000000000"})
	acct := inst.NewAccount(b, plan.Pro)
	h := inst.Server.Handler()
	for _, tc := range []struct{ name, path, key string }{
		{"Healthz", "/healthz", ""},
		{"MePro", "/v1/me", acct.Key},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, tc.path, nil)
					if tc.key != "" {
						req.Header.Set("Authorization", "Bearer "+tc.key)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%s: %d", tc.path, rec.Code)
					}
				}
			})
		})
	}
}
