package deploy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// alertRules is the shape of a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRulesParse reads deploy/prometheus/alerts.yaml as Prometheus would:
// known keys only, every rule named, with an expression, a valid for and a severity.
func TestAlertRulesParse(t *testing.T) {
	rules := readAlertRules(t)
	if len(rules.Groups) == 0 {
		t.Fatal("alerts.yaml has no groups")
	}
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("group %s: a rule without alert or expr: %+v", g.Name, r)
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if _, err := model.ParseDuration(r.For); err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary", r.Alert)
			}
			if err := balanced(r.Expr); err != "" {
				t.Errorf("alert %s: %s in %q", r.Alert, err, r.Expr)
			}
		}
	}
	for _, want := range []string{"CairnHighErrorRate", "CairnSlowRequests", "CairnQuotaStoreErrors", "CairnStripeWebhookFailures", "CairnRedisFallback"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestMonitoringNamesOnlyRealMetrics makes a replica serve some of every kind of
// traffic, then checks that each metric the dashboard and the alert rules name is
// in what it serves, so that renaming a metric cannot leave them blind.
func TestMonitoringNamesOnlyRealMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	// The series the HPA's request-rate metric is made from (k8s/prometheus-adapter.yaml).
	exprs = append(exprs, adapterRule(t, loadKube(t).adapter).SeriesQuery)
	names := metricNames(exprs)
	if len(names) < 10 {
		t.Fatalf("only %d metric names found in the monitoring files: %v", len(names), names)
	}

	rdb := redistest.Start(t)
	inst := servertest.Start(t, map[string]string{
		"REDIS_URL": rdb.URL, "STRIPE_SECRET_KEY": "sk_test_monitoring", "STRIPE_WEBHOOK_SECRET": "whsec_monitoring",
		"STRIPE_PRICE_PRO": "price_pro", "STRIPE_PRICE_ENTERPRISE": "price_enterprise",
	})
	acct := inst.NewAccount(t, plan.Free)
	servertest.ReadBody(t, inst.Do(t, "GET", "/v1/me", acct.Key, ""))
	servertest.ReadBody(t, inst.Do(t, "POST", "/v1/search", acct.Key, `{"query":"anything"}`))
	req, _ := http.NewRequest("POST", inst.URL+"/webhooks/stripe", strings.NewReader(`{"id":"evt_1"}`))
	req.Header.Set("Stripe-Signature", "t=1,v1=forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	servertest.ReadBody(t, resp)

	served := inst.Scrape(t)
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok {
				if _, isFamily := served[b]; isFamily {
					base = b
				}
			}
		}
		if _, ok := served[base]; !ok {
			t.Errorf("the monitoring files use %s, which the replica does not serve", n)
		}
	}
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var r alertRules
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	return r
}

// dashboardExprs returns every PromQL expression of the Grafana dashboard: its
// panels' targets and its variables' queries.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("grafana/cairn-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("cairn-dashboard.json: %v", err)
	}
	if d.Title == "" || len(d.Panels) == 0 {
		t.Fatal("cairn-dashboard.json: no title or no panels")
	}
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if err := balanced(tg.Expr); err != "" {
				t.Errorf("panel %q: %s in %q", p.Title, err, tg.Expr)
			}
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			out = append(out, q)
		}
	}
	return out
}

var metricName = regexp.MustCompile(`\b(?:cairn|go|process)_[a-z0-9_]+\b`)

// metricNames returns the metric names in exprs (Cairn's own, Go's and the
// process's), sorted and without repeats.
func metricNames(exprs []string) []string {
	set := map[string]bool{}
	for _, e := range exprs {
		// Label matchers' values ("{route!=...}") are not names.
		e = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(e, `""`)
		for _, n := range metricName.FindAllString(e, -1) {
			set[n] = true
		}
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// balanced reports unbalanced brackets in a PromQL expression ("" when balanced).
func balanced(expr string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '{' || r == '[':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return "unbalanced " + string(r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inQuote {
		return "unclosed bracket or quote"
	}
	return ""
}
