package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the server's Prometheus metrics, registered on its own
// registry (so several in-process servers do not collide).
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	requestsFor [128]prometheus.Counter // by API key, from the table
	connections prometheus.Gauge
	closedBad   prometheus.Counter
	latency     *prometheus.HistogramVec
	latencyFor  [128]prometheus.Observer // by API key, from the table
}

func newMetrics(s *Server) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_requests_total",
		Help: "Kafka requests received, by API.",
	}, []string{"api"})
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "weir_connections",
		Help: "Open client connections.",
	})
	m.closedBad = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "weir_connections_closed_on_error_total",
		Help: "Connections closed because of a protocol error (bad frame, unknown API or version).",
	})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "weir_request_duration_seconds",
		Help:    "Time from reading a request to writing its response, by API (long polls included).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"api"})
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weir_inflight_request_bytes",
		Help: "Bytes of requests read but not yet answered, across connections.",
	}, func() float64 { return float64(s.shared.Used()) })
	topics := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weir_topics",
		Help: "Topics in the cluster metadata.",
	}, func() float64 {
		if s.meta == nil {
			return 0
		}
		return float64(s.meta.Image().TopicCount())
	})
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weir_fetch_sessions",
		Help: "Open incremental fetch sessions (KIP-227).",
	}, func() float64 { return float64(s.fetchSessions.Len()) })
	for _, a := range s.apis {
		m.requestsFor[a.key] = m.requests.WithLabelValues(kmsg.NameForKey(a.key))
		m.latencyFor[a.key] = m.latency.WithLabelValues(kmsg.NameForKey(a.key))
	}
	m.registry.MustRegister(m.requests, m.connections, m.closedBad, m.latency, inflight, topics, sessions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry behind /metrics, so the process embedding
// the server can add its own collectors.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// startHTTP serves /metrics, /healthz and /readyz on cfg.HTTPListen.
func (s *Server) startHTTP(ctx context.Context) (net.Listener, *http.Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.HTTPListen)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: http listen %s: %w", s.cfg.HTTPListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http listener failed", "err", err)
		}
	}()
	s.logger.Info("http listener started", "addr", ln.Addr().String())
	return ln, hs, nil
}

// ready reports whether the server accepts Kafka requests.
func (s *Server) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started && !s.closed
}

// HTTPAddr returns the bound HTTP listener address, nil if there is none.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}
