package servertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// AxeViolation is one rule axe-core found broken on a page.
type AxeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"` // minor, moderate, serious or critical
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
		// Summary says what is wrong with this element, e.g. the contrast found.
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// String names the rule and the first elements that break it, for test failures.
func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for i, n := range v.Nodes {
		if i == 3 {
			fmt.Fprintf(&b, "\n    … and %d more", len(v.Nodes)-3)
			break
		}
		fmt.Fprintf(&b, "\n    %v %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", " "))
	}
	return b.String()
}

var axeSource = sync.OnceValues(func() (string, error) {
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "static", "vendor", "axe", "axe.min.js"))
	return string(b), err
})

// InjectAxe loads axe-core (vendored in static/vendor/axe, never served by Cairn)
// into the tab's current page; a navigation drops it again.
func InjectAxe(tb testing.TB, ctx context.Context) {
	tb.Helper()
	src, err := axeSource()
	if err != nil {
		tb.Fatalf("servertest: read axe-core: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src+"\n;typeof axe === 'object'")); err != nil {
		tb.Fatalf("servertest: inject axe-core: %v", err)
	}
}

// Axe runs axe-core's WCAG 2.x A and AA rules (and its best practices) on the
// tab's page, after InjectAxe, and returns the violations of the given impacts
// (all when none are given).
func Axe(tb testing.TB, ctx context.Context, impacts ...string) []AxeViolation {
	tb.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
		resultTypes: ['violations'],
	}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("servertest: run axe-core: %v", err)
	}
	var all []AxeViolation
	if err := json.Unmarshal([]byte(raw), &all); err != nil {
		tb.Fatalf("servertest: axe-core's answer: %v", err)
	}
	if len(impacts) == 0 {
		return all
	}
	var out []AxeViolation
	for _, v := range all {
		for _, i := range impacts {
			if v.Impact == i {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// LogInChrome logs the tab in through the log-in form and waits for the dashboard.
func LogInChrome(tb testing.TB, ctx context.Context, baseURL, email, password string) {
	tb.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(baseURL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
	); err != nil {
		tb.Fatalf("servertest: log in %s in Chromium: %v", email, err)
	}
}
