package broker

import (
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-broker/weir/broker/metadata"
	"github.com/weir-broker/weir/broker/replica"
	"github.com/weir-broker/weir/log"
)

// replicaStore is the partitionStore of a running broker: the replica
// manager, which hosts the partitions under the data directory and serves
// the data path (Produce, Fetch, ListOffsets, DeleteRecords,
// InitProducerId).
type replicaStore struct {
	m        *replica.Manager
	defaults replica.Config
	// resolve adds the dynamic broker defaults under a topic's overrides
	// (Server.effectiveTopicConfigs).
	resolve func(overrides map[string]string) map[string]string
}

// openReplicaStore opens every partition directory under the data
// directory.
func openReplicaStore(s *Server) (*replicaStore, error) {
	opts := log.Options{Logger: s.logger, PageCacheWindow: s.cfg.PageCacheWindow}
	if s.cfg.Fsync == "always" {
		opts.Fsync = log.FsyncAlways
	}
	m, err := replica.NewManager(replica.ManagerConfig{
		DataDir:    s.cfg.DataDir,
		BrokerID:   s.cfg.NodeID,
		Defaults:   s.partitionDefaults(),
		LogOptions: opts,
		Logger:     s.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open partitions: %w", err)
	}
	if s.metrics != nil {
		if err := s.metrics.registry.Register(dataPathCollector{m}); err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("broker: register data path metrics: %w", err)
		}
	}
	return &replicaStore{m: m, defaults: s.partitionDefaults(), resolve: s.effectiveTopicConfigs}, nil
}

// dataPathCollector exports the replica manager's gauges: hosted partitions
// and requests parked in the purgatories.
type dataPathCollector struct{ m *replica.Manager }

var (
	partitionsDesc = prometheus.NewDesc("weir_partitions", "Partitions hosted by this broker.", nil, nil)
	waitingDesc    = prometheus.NewDesc("weir_purgatory_waiting",
		"Requests parked in a purgatory: acks=all produces waiting for the high watermark, long-poll fetches waiting for MinBytes.",
		[]string{"purgatory"}, nil)
)

// Describe implements prometheus.Collector.
func (c dataPathCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- partitionsDesc
	ch <- waitingDesc
}

// Collect implements prometheus.Collector.
func (c dataPathCollector) Collect(ch chan<- prometheus.Metric) {
	produce, fetch := c.m.Waiting()
	ch <- prometheus.MustNewConstMetric(partitionsDesc, prometheus.GaugeValue, float64(len(c.m.Partitions())))
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(produce), "produce")
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(fetch), "fetch")
}

// replicas returns the replica manager; nil before Start.
func (s *Server) replicas() *replica.Manager {
	if rs, ok := s.store.(*replicaStore); ok {
		return rs.m
	}
	return nil
}

// partitionDefaults is the configuration of a topic without overrides:
// Kafka's defaults, with flush.ms from the broker's fsync interval (Kafka's
// log.flush.interval.ms) when Fsync is "interval".
func (s *Server) partitionDefaults() replica.Config {
	c := replica.DefaultConfig()
	if s.cfg.Fsync == "interval" {
		c.Log.FlushMs = s.cfg.FsyncInterval.Milliseconds()
	}
	return c
}

// topicConfig is the partition configuration of t: the broker defaults
// (static, then dynamic) with the topic's overrides.
func (r *replicaStore) topicConfig(t *metadata.Topic) (replica.Config, error) {
	c, err := r.defaults.With(r.resolve(t.Configs))
	if err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// ensure implements partitionStore: it creates t's partitions that are
// missing, applies t's configs to those already open, and gives each the
// leader epoch the metadata records, so batches carry it and clients' epochs
// (KIP-320) match. Until replication exists the ISR is this node alone.
func (r *replicaStore) ensure(nodeID int32, t *metadata.Topic) error {
	cfg, err := r.topicConfig(t)
	if err != nil {
		return err
	}
	for i, mp := range t.Partitions {
		p, ok := r.m.Partition(t.Name, int32(i))
		if ok {
			err = p.SetConfig(cfg)
		} else {
			p, err = r.m.CreatePartitionConfig(t.Name, int32(i), cfg)
		}
		if err != nil {
			return err
		}
		if mp.Leader == nodeID {
			p.BecomeLeader(mp.LeaderEpoch, []int32{nodeID})
		}
	}
	return nil
}

// deleteTopic implements partitionStore.
func (r *replicaStore) deleteTopic(name string) error { return r.m.DeleteTopic(name) }

// setConfigs implements partitionStore.
func (r *replicaStore) setConfigs(t *metadata.Topic) error {
	cfg, err := r.topicConfig(t)
	if err != nil {
		return err
	}
	for i := range t.Partitions {
		if p, ok := r.m.Partition(t.Name, int32(i)); ok {
			if err := p.SetConfig(cfg); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateConfigs implements partitionStore.
func (r *replicaStore) validateConfigs(m map[string]string) error {
	if _, err := r.defaults.With(r.resolve(m)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// acceptsConfig implements partitionStore.
func (r *replicaStore) acceptsConfig(name string) bool {
	return slices.Contains(replica.ConfigKeys(), name)
}

// close implements partitionStore: parked requests are answered, then every
// partition is closed cleanly.
func (r *replicaStore) close() error { return r.m.Close() }
