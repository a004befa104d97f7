package broker

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/replica"
	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/log/batch"
)

// GroupConfig configures the group coordinator. Zero fields take Kafka's
// defaults, except InitialRebalanceDelay, whose zero is Weir's default.
type GroupConfig struct {
	// OffsetsTopicPartitions is offsets.topic.num.partitions (50). It
	// applies when the offsets topic is created; an existing topic keeps
	// its partition count.
	OffsetsTopicPartitions int32
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes (7 days).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms
	// (10 min).
	OffsetsRetentionCheckInterval time.Duration
	// Transactions configures the transaction coordinator (txn.go).
	Transactions TransactionConfig
}

// serverExt holds the parts of the Server built in the groups files.
type serverExt struct {
	groups *group.Coordinator
	maint  *maintenance
	txns   txnShell // the transaction coordinator (txn.go)
}

// offsetsTopicConfigs are the configs of the offsets topic (Kafka's
// offsets.topic.segment.bytes is 100 MiB).
var offsetsTopicConfigs = map[string]string{
	"cleanup.policy": "compact",
	"segment.bytes":  "104857600",
}

// openGroups creates the offsets topic if it is missing and loads the
// groups from it. Nothing runs in the background until startGroups.
func (s *Server) openGroups() error {
	t, ok := s.meta.Image().Topic(group.Topic)
	if !ok {
		n := s.cfg.Groups.OffsetsTopicPartitions
		if n <= 0 {
			n = 50
		}
		n = min(n, s.cfg.MaxTopicPartitions)
		var err error
		t, err = s.createTopic(topicSpec{name: group.Topic, partitions: n, replicationFactor: -1, configs: offsetsTopicConfigs}, false)
		if err != nil {
			return fmt.Errorf("broker: create %s: %w", group.Topic, err)
		}
	}
	gc := s.cfg.Groups
	c := group.NewCoordinator(offsetsStore{s: s}, group.Config{
		Partitions:             int32(len(t.Partitions)),
		InitialRebalanceDelay:  gc.InitialRebalanceDelay,
		MinSessionTimeout:      gc.MinSessionTimeout,
		MaxSessionTimeout:      gc.MaxSessionTimeout,
		OffsetsRetention:       gc.OffsetsRetention,
		RetentionCheckInterval: gc.OffsetsRetentionCheckInterval,
		Logger:                 s.logger.With("component", "groups"),
	})
	if err := c.Load(); err != nil {
		return fmt.Errorf("broker: load groups: %w", err)
	}
	s.ext.groups = c
	if err := s.metrics.registry.Register(lagCollector{s}); err != nil {
		return fmt.Errorf("broker: register lag metrics: %w", err)
	}
	return nil
}

// startGroups starts the coordinator's timers and the log maintenance.
func (s *Server) startGroups() {
	if s.ext.groups != nil {
		s.ext.groups.Start()
	}
	s.startTxns()
	s.ext.maint = startMaintenance(s)
}

// closeGroups answers every parked group request and stops the
// background work. The partitions stay open.
func (s *Server) closeGroups() {
	if s.ext.maint != nil {
		s.ext.maint.close()
	}
	s.closeTxns()
	if s.ext.groups != nil {
		_ = s.ext.groups.Close()
	}
}

// coordinator returns the group coordinator, or COORDINATOR_NOT_AVAILABLE
// before Start.
func (s *Server) coordinator() (*group.Coordinator, error) {
	if s.ext.groups == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	return s.ext.groups, nil
}

// isInternalTopic reports whether clients may not produce to a topic.
func isInternalTopic(name string) bool { return name == group.Topic || name == txn.Topic }

// offsetsStore is the coordinator's group.Store: the partitions of the
// offsets topic through the replica layer.
type offsetsStore struct {
	s     *Server
	topic string // "" is the offsets topic; the transaction coordinator uses its own
}

func (o offsetsStore) name() string {
	if o.topic == "" {
		return group.Topic
	}
	return o.topic
}

func (o offsetsStore) partition(p int32) (*replica.Partition, error) {
	rm := o.s.replicas()
	if rm == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	part, ok := rm.Partition(o.name(), p)
	if !ok {
		return nil, fmt.Errorf("%w: %s-%d is not on this broker", kerr.NotCoordinator, o.name(), p)
	}
	return part, nil
}

// Append implements group.Store: an acks=all append. Alone in the ISR, the
// append commits at once; with followers the high watermark must pass it.
func (o offsetsStore) Append(p int32, batches []byte) error {
	part, err := o.partition(p)
	if err != nil {
		return err
	}
	res, err := part.Append(batches, -1)
	if err != nil {
		return err
	}
	done, err := part.AckState(res.LastOffset)
	if err != nil {
		return err
	}
	if !done {
		// Replicated offsets topics need a wait on the high watermark; a
		// single node never gets here.
		return fmt.Errorf("%w: %s-%d: offset %d not yet replicated", kerr.RequestTimedOut, o.name(), p, res.LastOffset)
	}
	return nil
}

// Scan implements group.Store: every committed batch of the partition.
func (o offsetsStore) Scan(p int32, fn func(b batch.Batch) error) error {
	part, err := o.partition(p)
	if err != nil {
		return err
	}
	offset := part.LogStartOffset()
	var buf bytes.Buffer
	for {
		r, err := part.Read(offset, 1<<20)
		if err != nil {
			return fmt.Errorf("broker: read %s-%d at %d: %w", o.name(), p, offset, err)
		}
		if r.Log == nil {
			return nil
		}
		buf.Reset()
		_, err = r.Log.WriteTo(&buf)
		r.Release()
		if err != nil {
			return fmt.Errorf("broker: read %s-%d at %d: %w", o.name(), p, offset, err)
		}
		next := offset
		for rest := buf.Bytes(); len(rest) > 0; {
			n, err := batch.Size(rest)
			if err != nil || n > len(rest) {
				break
			}
			b, err := batch.Parse(rest[:n])
			if err != nil {
				return fmt.Errorf("broker: %s-%d: %w", o.name(), p, err)
			}
			if b.NextOffset() > offset {
				if err := fn(b); err != nil {
					return err
				}
			}
			next = max(next, b.NextOffset())
			rest = rest[n:]
		}
		if next == offset {
			return fmt.Errorf("broker: %s-%d: no progress reading at %d", o.name(), p, offset)
		}
		offset = next
	}
}

// PartitionLag is one partition's committed offset and lag.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset.
	Committed int64
	// LogEnd is the partition's log end offset; -1 if the partition is not
	// on this broker.
	LogEnd int64
	// Lag is LogEnd - Committed, at least 0; -1 when LogEnd is unknown.
	Lag int64
}

// ErrUnknownGroup is returned by GroupLag for a group this broker does not
// know.
var ErrUnknownGroup = errors.New("broker: unknown group")

// GroupLag returns a group's lag per partition it has committed offsets
// for, sorted by topic and partition.
func (s *Server) GroupLag(groupID string) ([]PartitionLag, error) {
	c, err := s.coordinator()
	if err != nil {
		return nil, err
	}
	if _, ok, err := c.Describe(groupID); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%w: %q", ErrUnknownGroup, groupID)
		}
		return nil, err
	}
	offs, err := c.FetchOffsets(groupID, nil)
	if err != nil {
		return nil, err
	}
	rm := s.replicas()
	out := make([]PartitionLag, 0, len(offs))
	for _, o := range offs {
		l := PartitionLag{Topic: o.Topic, Partition: o.Partition, Committed: o.Offset.Offset, LogEnd: -1, Lag: -1}
		if rm != nil {
			if p, ok := rm.Partition(o.Topic, o.Partition); ok {
				l.LogEnd = p.LogEndOffset()
				l.Lag = max(l.LogEnd-l.Committed, 0)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

var lagDesc = prometheus.NewDesc("weir_group_lag",
	"Log end offset minus the group's committed offset, per partition.",
	[]string{"group", "topic", "partition"}, nil)

// lagCollector exports GroupLag for every group at scrape time.
type lagCollector struct{ s *Server }

// Describe implements prometheus.Collector.
func (l lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

// Collect implements prometheus.Collector.
func (l lagCollector) Collect(ch chan<- prometheus.Metric) {
	c, err := l.s.coordinator()
	if err != nil {
		return
	}
	for _, id := range c.GroupIDs() {
		lags, err := l.s.GroupLag(id)
		if err != nil {
			continue
		}
		for _, x := range lags {
			if x.Lag < 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(x.Lag),
				id, x.Topic, strconv.Itoa(int(x.Partition)))
		}
	}
}
