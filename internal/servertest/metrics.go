package servertest

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a replica's /metrics, parsed.
type Metrics map[string]*dto.MetricFamily

// Scrape reads and parses the replica's /metrics.
func (i *Instance) Scrape(tb testing.TB) Metrics {
	tb.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(i.Metrics(tb)))
	if err != nil {
		tb.Fatalf("servertest: parse /metrics: %v", err)
	}
	return fams
}

// Value returns the value of the series of family name whose labels include
// labels (counter, gauge or untyped; a histogram's sample count), summed over the
// series that match; 0 when none does.
func (m Metrics) Value(name string, labels map[string]string) float64 {
	f, ok := m[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		case s.Untyped != nil:
			sum += s.Untyped.GetValue()
		case s.Histogram != nil:
			sum += float64(s.Histogram.GetSampleCount())
		}
	}
	return sum
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range s.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
