// Package plan is the one table that defines Free, Pro and Enterprise: it drives
// enforcement, the pricing and billing pages, /v1/usage and the docs.
package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// ID names a plan as stored in workspaces.plan.
type ID string

// The plans, cheapest first.
const (
	Free       ID = "free"
	Pro        ID = "pro"
	Enterprise ID = "enterprise"
)

// Unlimited marks a limit that does not apply.
const Unlimited = -1

// Limits are what a plan allows. A value of Unlimited means no limit.
type Limits struct {
	RequestsPerMonth int64 // billable API requests per calendar month (UTC)
	RatePerMinute    int   // per key, GCRA with burst = the per-minute figure
	IPPerDay         int   // unauthenticated /v1 calls per IP per day
	APIKeys          int   // active keys per workspace
	Documents        int   // documents stored per workspace
	Members          int   // members per workspace
}

// Plan is one row of the table.
type Plan struct {
	ID              ID
	Name            string
	PriceCents      int // per month
	Limits          Limits
	ServerOpenAIKey bool // answers may use the server's OpenAI key
	Team            bool // roles, invitations, audit log
}

// Table is the ordered list of plans.
type Table []Plan

// Default returns the plan table of shared/DESIGN.md.
func Default() Table {
	return Table{
		{ID: Free, Name: "Free", PriceCents: 0, Limits: Limits{RequestsPerMonth: 100, RatePerMinute: 10, IPPerDay: 100, APIKeys: 2, Documents: 500, Members: 1}},
		{ID: Pro, Name: "Pro", PriceCents: 1000, ServerOpenAIKey: true, Limits: Limits{RequestsPerMonth: Unlimited, RatePerMinute: 120, IPPerDay: 100, APIKeys: 20, Documents: 50_000, Members: 1}},
		{ID: Enterprise, Name: "Enterprise", PriceCents: 5000, ServerOpenAIKey: true, Team: true, Limits: Limits{RequestsPerMonth: Unlimited, RatePerMinute: 600, IPPerDay: 100, APIKeys: 200, Documents: 500_000, Members: 25}},
	}
}

// Get returns the plan with the given id; unknown ids fall back to Free, so a bad
// row can never grant more than the cheapest plan.
func (t Table) Get(id ID) Plan {
	for _, p := range t {
		if p.ID == id {
			return p
		}
	}
	return t[0]
}

// Valid reports whether id names a plan.
func (t Table) Valid(id ID) bool {
	for _, p := range t {
		if p.ID == id {
			return true
		}
	}
	return false
}

// Next returns the cheapest plan whose limit, read by f, exceeds the current one,
// for messages like "Pro allows 20 API keys". ok is false when none does.
func (t Table) Next(id ID, f func(Limits) int64) (Plan, bool) {
	cur := f(t.Get(id).Limits)
	for _, p := range t {
		v := f(p.Limits)
		if p.ID != id && (v == Unlimited || (cur != Unlimited && v > cur)) && p.PriceCents > t.Get(id).PriceCents {
			return p, true
		}
	}
	return Plan{}, false
}

var limitNames = map[string]func(*Limits) any{
	"REQUESTS_PER_MONTH": func(l *Limits) any { return &l.RequestsPerMonth },
	"RATE_PER_MINUTE":    func(l *Limits) any { return &l.RatePerMinute },
	"API_KEYS":           func(l *Limits) any { return &l.APIKeys },
	"DOCUMENTS":          func(l *Limits) any { return &l.Documents },
	"MEMBERS":            func(l *Limits) any { return &l.Members },
	"IP_PER_DAY":         func(l *Limits) any { return &l.IPPerDay },
}

// Override applies CAIRN_PLAN_<PLAN>_<LIMIT> variables from environ ("NAME=value"
// pairs). A value of "unlimited" or -1 lifts the limit. It returns one error per
// bad variable.
func (t Table) Override(environ []string) (Table, []error) {
	out := make(Table, len(t))
	copy(out, t)
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, "CAIRN_PLAN_")
		if !ok {
			continue
		}
		idx := -1
		var limit string
		for i, p := range out {
			if l, ok := strings.CutPrefix(rest, strings.ToUpper(string(p.ID))+"_"); ok {
				idx, limit = i, l
			}
		}
		field, known := limitNames[limit]
		if idx < 0 || !known {
			errs = append(errs, fmt.Errorf("%s: unknown plan or limit (want CAIRN_PLAN_<FREE|PRO|ENTERPRISE>_<REQUESTS_PER_MONTH|RATE_PER_MINUTE|API_KEYS|DOCUMENTS|MEMBERS|IP_PER_DAY>)", name))
			continue
		}
		var n int64
		if strings.EqualFold(value, "unlimited") {
			n = Unlimited
		} else {
			v, err := strconv.ParseInt(value, 10, 64)
			if err != nil || v < Unlimited || (v == 0 && limit == "RATE_PER_MINUTE") {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive whole number or \"unlimited\"", name, value))
				continue
			}
			n = v
		}
		switch p := field(&out[idx].Limits).(type) {
		case *int64:
			*p = n
		case *int:
			*p = int(n)
		}
	}
	return out, errs
}

// Format renders a limit for people: "Unlimited" or the number with thousands separators.
func Format(n int64) string {
	if n == Unlimited {
		return "Unlimited"
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
