// Package txn is Weir's transaction coordinator (KIP-98): the state of every
// transactional id, kept durable in the compacted __transaction_state topic
// in Kafka's record formats, and the rules for InitProducerId,
// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn.
//
// The core (this file) is pure: it checks a request against a transaction's
// metadata and returns the next metadata. The shell (coordinator.go) owns
// the metadata of every id, persists each change before answering, writes
// the markers through the broker and aborts transactions that outlive their
// timeout.
package txn

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic is the internal topic that holds transaction state.
const Topic = "__transaction_state"

// State is a transaction's state, with Kafka's numbering (the value stored
// in TxnMetadataValue.State).
type State int8

// Transaction states.
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort",
	"CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String returns Kafka's name of the state.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// TopicPartition names a partition in a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Metadata is one transactional id's state.
type Metadata struct {
	ID         string
	ProducerID int64
	Epoch      int16
	Timeout    time.Duration
	State      State
	Partitions []TopicPartition // sorted, unique; empty unless Ongoing or Prepare*
	Start      time.Time        // when the ongoing transaction began
	LastUpdate time.Time
	// Bumped is set when the coordinator itself bumped Epoch to abort a
	// transaction (timeout, recovery): the producer still at Epoch-1 is
	// not a zombie and may recover (KIP-360, KIP-588) instead of being
	// fenced. It is kept in memory only, as Kafka keeps lastProducerEpoch.
	Bumped bool
}

// clone returns a copy that shares nothing with m.
func (m Metadata) clone() Metadata {
	m.Partitions = slices.Clone(m.Partitions)
	return m
}

// checkProducer checks a request's producer id and epoch against m:
// another id is INVALID_PRODUCER_ID_MAPPING, an older epoch PRODUCER_FENCED
// (a zombie), a newer one INVALID_PRODUCER_EPOCH. The epoch just below one
// the coordinator bumped itself is INVALID_PRODUCER_EPOCH too, which
// clients recover from by re-initialising (KIP-588).
func checkProducer(m *Metadata, pid int64, epoch int16) error {
	switch {
	case pid != m.ProducerID:
		return fmt.Errorf("%w: transactional id %q has producer id %d, not %d", kerr.InvalidProducerIDMapping, m.ID, m.ProducerID, pid)
	case m.Bumped && epoch == m.Epoch-1:
		return fmt.Errorf("%w: transactional id %q: the coordinator aborted the transaction of epoch %d", kerr.InvalidProducerEpoch, m.ID, epoch)
	case epoch < m.Epoch:
		return fmt.Errorf("%w: transactional id %q epoch %d, current %d", kerr.ProducerFenced, m.ID, epoch, m.Epoch)
	case epoch > m.Epoch:
		return fmt.Errorf("%w: transactional id %q epoch %d, current %d", kerr.InvalidProducerEpoch, m.ID, epoch, m.Epoch)
	}
	return nil
}

// addPartitions returns m with tps added to its transaction, which starts
// if none is open.
func addPartitions(m Metadata, pid int64, epoch int16, tps []TopicPartition, now time.Time) (Metadata, error) {
	if err := checkProducer(&m, pid, epoch); err != nil {
		return m, err
	}
	switch m.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return m, fmt.Errorf("%w: transactional id %q is %s", kerr.ConcurrentTransactions, m.ID, m.State)
	case Dead:
		return m, fmt.Errorf("%w: transactional id %q is %s", kerr.InvalidTxnState, m.ID, m.State)
	case Ongoing:
	default:
		m.State, m.Start, m.Partitions = Ongoing, now, nil
	}
	m = m.clone()
	for _, tp := range tps {
		i, found := slices.BinarySearchFunc(m.Partitions, tp, compareTP)
		if !found {
			m.Partitions = slices.Insert(m.Partitions, i, tp)
		}
	}
	m.LastUpdate = now
	return m, nil
}

// compareTP orders partitions by topic, then partition.
func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}

// endAction is what EndTxn must do.
type endAction int

const (
	endWrite endAction = iota // prepare, write the markers, complete
	endDone                   // a retry of what is already complete: answer success
)

// endTxn decides an EndTxn: commit or abort the ongoing transaction.
func endTxn(m *Metadata, pid int64, epoch int16, commit bool) (endAction, error) {
	if err := checkProducer(m, pid, epoch); err != nil {
		return 0, err
	}
	switch m.State {
	case Ongoing:
		return endWrite, nil
	case CompleteCommit:
		if commit {
			return endDone, nil
		}
	case CompleteAbort:
		if !commit {
			return endDone, nil
		}
	case Empty:
		if !commit {
			return endDone, nil // nothing to abort
		}
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return 0, fmt.Errorf("%w: transactional id %q is %s", kerr.ConcurrentTransactions, m.ID, m.State)
	}
	return 0, fmt.Errorf("%w: transactional id %q is %s, cannot %s", kerr.InvalidTxnState, m.ID, m.State, verb(commit))
}

func verb(commit bool) string {
	if commit {
		return "commit"
	}
	return "abort"
}

// prepare returns m moved to PrepareCommit or PrepareAbort.
func prepare(m Metadata, commit bool, now time.Time) Metadata {
	m = m.clone()
	m.State, m.LastUpdate = PrepareAbort, now
	if commit {
		m.State = PrepareCommit
	}
	return m
}

// complete returns m moved from Prepare* to Complete*, with no partitions.
func complete(m Metadata, now time.Time) Metadata {
	m = m.clone()
	if m.State == PrepareCommit {
		m.State = CompleteCommit
	} else {
		m.State = CompleteAbort
	}
	m.Partitions, m.LastUpdate = nil, now
	return m
}

// fence returns m with its epoch bumped, moved to PrepareAbort: how the
// coordinator aborts a transaction its producer did not end (timeout,
// a new InitProducerId, recovery). The bumped epoch fences the old
// producer on every partition the markers reach.
func fence(m Metadata, now time.Time) Metadata {
	m = prepare(m, false, now)
	if m.Epoch < math.MaxInt16 {
		m.Epoch++
		m.Bumped = true
	}
	return m
}

// epochExhausted reports whether m's producer id can take no further epoch
// bump, so InitProducerId must hand out a new producer id.
func epochExhausted(m *Metadata) bool { return m.Epoch >= math.MaxInt16-1 }

// expired reports whether m's transaction has outlived its timeout at now.
func expired(m *Metadata, now time.Time) bool {
	return m.State == Ongoing && now.Sub(m.Start) > m.Timeout
}
