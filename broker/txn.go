package broker

import (
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/weir-broker/weir/broker/group"
	"github.com/weir-broker/weir/broker/txn"
	"github.com/weir-broker/weir/log/batch"
)

// TransactionConfig configures the transaction coordinator. Zero fields
// take Kafka's defaults.
type TransactionConfig struct {
	// StateTopicPartitions is transaction.state.log.num.partitions (50),
	// used when __transaction_state is created, on the first request that
	// needs it (as Kafka creates it).
	StateTopicPartitions int32
	// MaxTimeout is transaction.max.timeout.ms (15 min).
	MaxTimeout time.Duration
	// AbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s).
	AbortInterval time.Duration
}

// txnStateTopicConfigs are the configs of __transaction_state (Kafka's
// transaction.state.log.segment.bytes is 100 MiB).
var txnStateTopicConfigs = map[string]string{
	"cleanup.policy": "compact",
	"segment.bytes":  "104857600",
}

// txnShell holds the transaction coordinator, created at Start when
// __transaction_state exists and otherwise on first use.
type txnShell struct {
	mu      sync.Mutex
	c       *txn.Coordinator
	closed  bool
	started bool // startGroups ran: a coordinator created later starts at once
}

// startTxns loads the transaction coordinator if its topic exists.
func (s *Server) startTxns() {
	s.ext.txns.mu.Lock()
	s.ext.txns.started = true
	s.ext.txns.mu.Unlock()
	if _, ok := s.meta.Image().Topic(txn.Topic); !ok {
		return
	}
	if _, err := s.txnCoordinator(); err != nil {
		s.logger.Error("broker: load transactions", "err", err)
	}
}

// closeTxns stops the transaction coordinator.
func (s *Server) closeTxns() {
	s.ext.txns.mu.Lock()
	c := s.ext.txns.c
	s.ext.txns.closed = true
	s.ext.txns.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// txnCoordinator returns the transaction coordinator, creating
// __transaction_state and loading it if needed.
func (s *Server) txnCoordinator() (*txn.Coordinator, error) {
	sh := &s.ext.txns
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.c != nil {
		return sh.c, nil
	}
	if sh.closed || !sh.started || s.replicas() == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	tc := s.cfg.Groups.Transactions
	t, ok := s.meta.Image().Topic(txn.Topic)
	if !ok {
		n := tc.StateTopicPartitions
		if n <= 0 {
			n = 50
		}
		n = min(n, s.cfg.MaxTopicPartitions)
		var err error
		t, err = s.createTopic(topicSpec{name: txn.Topic, partitions: n, replicationFactor: -1, configs: txnStateTopicConfigs}, false)
		if err != nil {
			return nil, fmt.Errorf("broker: create %s: %w", txn.Topic, err)
		}
	}
	c := txn.NewCoordinator(offsetsStore{s: s, topic: txn.Topic}, txnMarkers{s}, txn.Config{
		Partitions:    int32(len(t.Partitions)),
		MaxTimeout:    tc.MaxTimeout,
		AbortInterval: tc.AbortInterval,
		NewProducerID: s.replicas().NextProducerID,
		Logger:        s.logger.With("component", "transactions"),
	})
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("broker: load transactions: %w", err)
	}
	c.Start()
	sh.c = c
	return c, nil
}

// txnMarkers is the coordinator's txn.Markers: a control batch on every
// partition of the transaction; on a partition of the offsets topic the
// group coordinator then applies or drops the offsets it holds.
type txnMarkers struct{ s *Server }

// WriteMarkers implements txn.Markers. Partitions no longer on this broker
// (a deleted topic) are skipped: nothing there waits for the marker.
func (m txnMarkers) WriteMarkers(pid int64, epoch int16, commit bool, tps []txn.TopicPartition) error {
	rm := m.s.replicas()
	if rm == nil {
		return kerr.CoordinatorNotAvailable
	}
	for _, tp := range tps {
		p, ok := rm.Partition(tp.Topic, tp.Partition)
		if !ok {
			continue
		}
		if _, err := p.AppendMarker(pid, epoch, commit, 0); err != nil {
			return err
		}
		if tp.Topic == group.Topic {
			gc, err := m.s.coordinator()
			if err != nil {
				return err
			}
			gc.CompleteTxnOffsets(tp.Partition, pid, commit)
		}
	}
	return nil
}

// checkTxnProduce runs write for one partition of a produce. A
// transactional batch must come with the request's transactional id and
// belong to that id's ongoing transaction (INVALID_TXN_STATE otherwise, as
// Kafka answers); the write then runs while the transaction cannot end.
// Other batches are written as they are.
func (s *Server) checkTxnProduce(txnID *string, topic string, partition int32, records []byte, write func() error) error {
	if len(records) < batch.HeaderSize {
		return write()
	}
	b := batch.Batch(records)
	if !b.IsTransactional() || b.IsControl() {
		return write()
	}
	if txnID == nil || *txnID == "" {
		return fmt.Errorf("%w: transactional batch without a transactional id", kerr.InvalidTxnState)
	}
	c, err := s.txnCoordinator()
	if err != nil {
		return err
	}
	return c.Verify(*txnID, b.ProducerID(), b.ProducerEpoch(), txn.TopicPartition{Topic: topic, Partition: partition}, write)
}

// txnOffsetPending reports whether an open transaction holds group's offset
// of topic-partition (OffsetFetch RequireStable, KIP-447).
func (s *Server) txnOffsetPending(groupID, topic string, partition int32) bool {
	gc, err := s.coordinator()
	return err == nil && gc.TxnOffsetPending(groupID, group.TopicPartition{Topic: topic, Partition: partition})
}
