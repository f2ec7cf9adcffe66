package telemetry

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP holds the metrics of the requests a replica serves.
type HTTP struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	inFlight prometheus.Gauge
	conns    atomic.Int64
}

// NewHTTP registers the request metrics in t's registry.
func (t *Telemetry) NewHTTP() *HTTP {
	h := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_requests_total",
			Help: "HTTP requests served, by route pattern (\"(no route)\" for none), method and status.",
		}, []string{"route", "method", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method (streamed answers: the whole stream).",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	t.registry.MustRegister(h.requests, h.seconds, h.inFlight, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_http_active_connections", Help: "Client connections open on the public listener.",
	}, func() float64 { return float64(h.conns.Load()) }))
	return h
}

// Begin counts a request in flight; Observe ends it.
func (h *HTTP) Begin() { h.inFlight.Inc() }

// Observe records a served request: route is the router's pattern, never the raw path.
func (h *HTTP) Observe(route, method string, status int, d time.Duration) {
	h.inFlight.Dec()
	h.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	h.seconds.WithLabelValues(route, method).Observe(d.Seconds())
}

// ConnState is the http.Server's ConnState hook: it counts open connections.
func (h *HTTP) ConnState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		h.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		h.conns.Add(-1)
	}
}

// ActiveConnections returns the number of client connections open now.
func (h *HTTP) ActiveConnections() int64 { return h.conns.Load() }
