package plan

import (
	"fmt"
	"strings"
)

// Markdown renders the table as the Markdown table in README.md; a test keeps the
// two identical, so the docs cannot drift from what is enforced.
func (t Table) Markdown() string {
	var b strings.Builder
	row := func(label string, cell func(Plan) string) {
		b.WriteString("| " + label + " |")
		for _, p := range t {
			b.WriteString(" " + cell(p) + " |")
		}
		b.WriteString("\n")
	}
	row("", func(p Plan) string { return p.Name })
	b.WriteString("|---|" + strings.Repeat("---|", len(t)) + "\n")
	limit := func(f func(Limits) int64, unit string) func(Plan) string {
		return func(p Plan) string {
			if n := f(p.Limits); n != Unlimited {
				return Format(n) + unit
			}
			return "unlimited"
		}
	}
	row("price", func(p Plan) string {
		if p.PriceCents == 0 {
			return "$0"
		}
		return fmt.Sprintf("$%d / month", p.PriceCents/100)
	})
	row("billable API requests", limit(func(l Limits) int64 { return l.RequestsPerMonth }, " / month"))
	row("rate limit per key", limit(func(l Limits) int64 { return int64(l.RatePerMinute) }, " / minute"))
	row("API keys", limit(func(l Limits) int64 { return int64(l.APIKeys) }, ""))
	row("documents stored", limit(func(l Limits) int64 { return int64(l.Documents) }, ""))
	row("members", func(p Plan) string {
		s := limit(func(l Limits) int64 { return int64(l.Members) }, "")(p)
		if p.Team {
			s += ", roles, invitations, audit log"
		}
		return s
	})
	row("answers with the server's OpenAI key", func(p Plan) string {
		if p.ServerOpenAIKey {
			return "yes"
		}
		return "no (bring your own key)"
	})
	if n := t.Get(Free).Limits.IPPerDay; n != Unlimited {
		// Callers without a valid key have no plan: the Free row's figure applies.
		fmt.Fprintf(&b, "\nCalls to `/v1` without a valid key: %s per IP address and day, whatever the plan.\n", Format(int64(n)))
	}
	return b.String()
}
