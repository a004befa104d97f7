package outbox

import "github.com/prometheus/client_golang/prometheus"

// metrics are the relay's Prometheus collectors.
type metrics struct {
	pending   prometheus.Gauge
	oldest    prometheus.Gauge
	parked    prometheus.Gauge
	published prometheus.Counter
	parkedTot prometheus.Counter
	fenced    prometheus.Counter
	failures  prometheus.Counter
	breaker   prometheus.Gauge
	latency   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pending:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_outbox_pending_rows", Help: "Outbox rows not yet published (parked rows excluded)."}),
		oldest:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_outbox_oldest_unpublished_seconds", Help: "Age of the oldest unpublished, unparked outbox row."}),
		parked:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_outbox_parked_rows", Help: "Outbox rows parked after too many rejected attempts."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_outbox_published_total", Help: "Outbox rows published and deleted."}),
		parkedTot: prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_outbox_parked_total", Help: "Outbox rows parked by this relay."}),
		fenced:    prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_outbox_fenced_total", Help: "Times this relay lost its leadership."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_outbox_publish_failures_total", Help: "Failed publish calls (transient and rejected)."}),
		breaker:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_outbox_circuit_open", Help: "1 while the broker circuit breaker is open."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weir_outbox_publish_latency_seconds", Help: "Time from outbox row write to broker acknowledgment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.pending, m.oldest, m.parked, m.published, m.parkedTot, m.fenced, m.failures, m.breaker, m.latency)
	}
	return m
}
