package telemetry

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads the pgx pool's statistics at each scrape.
type poolCollector struct {
	pool *pgxpool.Pool
}

var (
	poolAcquired = prometheus.NewDesc("cairn_db_pool_acquired_connections", "Pooled PostgreSQL connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("cairn_db_pool_idle_connections", "Pooled PostgreSQL connections idle.", nil, nil)
	poolTotal    = prometheus.NewDesc("cairn_db_pool_total_connections", "Pooled PostgreSQL connections open (acquired, idle and being made).", nil, nil)
	poolMax      = prometheus.NewDesc("cairn_db_pool_max_connections", "The pool's size (pool_max_conns).", nil, nil)
	poolAcquires = prometheus.NewDesc("cairn_db_pool_acquires_total", "Connections taken from the pool.", nil, nil)
	poolEmpty    = prometheus.NewDesc("cairn_db_pool_empty_acquires_total", "Acquisitions that had to wait because no connection was idle.", nil, nil)
	poolWait     = prometheus.NewDesc("cairn_db_pool_acquire_wait_seconds_total", "Time spent waiting for a pooled connection.", nil, nil)
	poolCanceled = prometheus.NewDesc("cairn_db_pool_canceled_acquires_total", "Acquisitions abandoned because the caller's context ended.", nil, nil)
)

// RegisterPool adds the pool's gauges and counters (cairn_db_pool_*) to the registry.
func (t *Telemetry) RegisterPool(pool *pgxpool.Pool) {
	t.registry.MustRegister(poolCollector{pool})
}

// Describe sends the descriptors of the pool's metrics.
func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolEmpty, poolWait, poolCanceled} {
		ch <- d
	}
}

// Collect sends the pool's current figures.
func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
