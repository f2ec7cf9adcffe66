package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/views"
)

// showHome renders the public landing page with the plan table.
func (h *Handler) showHome(c echo.Context) error {
	loggedIn := h.Sessions.GetString(c.Request().Context(), sessUserID) != ""
	csrf := ""
	if loggedIn { // the public page has no form for visitors; no session for them
		csrf = csrfToken(c)
	}
	return render(c, http.StatusOK, views.Landing(csrf, loggedIn, PlanCards(h.Config.Plans, "")))
}

// PlanCards turns the plan table into pricing cards, marking current.
func PlanCards(t plan.Table, current plan.ID) []views.PlanCard {
	cards := make([]views.PlanCard, len(t))
	for i, p := range t {
		l := p.Limits
		features := []string{
			requestsLine(l.RequestsPerMonth),
			fmt.Sprintf("%d requests per minute per key", l.RatePerMinute),
			plan.Format(int64(l.APIKeys)) + " API keys",
			plan.Format(int64(l.Documents)) + " documents stored",
		}
		if p.Team {
			features = append(features, fmt.Sprintf("Up to %d members, roles, invitations, audit log", l.Members))
		} else {
			features = append(features, "1 member")
		}
		if p.ServerOpenAIKey {
			features = append(features, "Generated answers included")
		} else {
			features = append(features, "Generated answers with your own OpenAI key")
		}
		cards[i] = views.PlanCard{
			ID: string(p.ID), Name: p.Name, Price: fmt.Sprintf("$%d", p.PriceCents/100),
			Features: features, Current: p.ID == current,
		}
	}
	return cards
}

func requestsLine(n int64) string {
	if n == plan.Unlimited {
		return "Unlimited API requests"
	}
	return plan.Format(n) + " API requests per month"
}
