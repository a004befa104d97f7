package txn

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-broker/weir/log/batch"
)

// Records of __transaction_state, in Kafka's formats: the key is
// TxnMetadataKey v0 (the transactional id), the value TxnMetadataValue v0
// (producer id and epoch, timeout, state, partitions, timestamps). A null
// value is a tombstone. The topic is compacted: the newest record of an id
// is its state.

// ErrBadRecord: a __transaction_state record that does not decode.
var ErrBadRecord = errors.New("txn: bad transaction state record")

// PartitionFor returns the partition of __transaction_state that holds a
// transactional id: abs(Java hashCode) modulo the partition count, as Kafka
// places it.
func PartitionFor(id string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(id)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// encodeRecord returns the key and value of m's record.
func encodeRecord(m *Metadata) (key, value []byte) {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = m.ID
	v := kmsg.NewTxnMetadataValue()
	v.ProducerID, v.ProducerEpoch = m.ProducerID, m.Epoch
	v.TimeoutMillis = int32(m.Timeout / time.Millisecond)
	v.State = kmsg.TransactionState(m.State)
	for _, tp := range m.Partitions {
		if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
			v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		t := kmsg.NewTxnMetadataValueTopic()
		t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
		v.Topics = append(v.Topics, t)
	}
	v.LastUpdateTimestamp = m.LastUpdate.UnixMilli()
	v.StartTimestamp = -1
	if m.State == Ongoing || m.State == PrepareCommit || m.State == PrepareAbort {
		v.StartTimestamp = m.Start.UnixMilli()
	}
	return k.AppendTo(nil), v.AppendTo(nil)
}

// buildBatch returns a batch holding m's record, stamped now.
func buildBatch(m *Metadata, now time.Time) ([]byte, error) {
	k, v := encodeRecord(m)
	b, err := batch.Build(batch.Options{}, batch.Record{Key: k, Value: v, Timestamp: now.UnixMilli()})
	if err != nil {
		return nil, fmt.Errorf("txn: build record for %q: %w", m.ID, err)
	}
	return b, nil
}

// decodeRecord decodes one record. ok is false for a tombstone.
func decodeRecord(key, value []byte) (m Metadata, ok bool, err error) {
	k := kmsg.NewTxnMetadataKey()
	if err := k.ReadFrom(key); err != nil {
		return m, false, fmt.Errorf("%w: key: %v", ErrBadRecord, err)
	}
	if value == nil {
		m.ID = k.TransactionalID
		return m, false, nil
	}
	v := kmsg.NewTxnMetadataValue()
	if err := v.ReadFrom(value); err != nil {
		return m, false, fmt.Errorf("%w: value of %q: %v", ErrBadRecord, k.TransactionalID, err)
	}
	if v.State < 0 || v.State > kmsg.TransactionState(PrepareEpochFence) || v.TimeoutMillis < 0 {
		return m, false, fmt.Errorf("%w: %q: state %d timeout %d", ErrBadRecord, k.TransactionalID, v.State, v.TimeoutMillis)
	}
	m = Metadata{
		ID: k.TransactionalID, ProducerID: v.ProducerID, Epoch: v.ProducerEpoch,
		Timeout: time.Duration(v.TimeoutMillis) * time.Millisecond, State: State(v.State),
		LastUpdate: time.UnixMilli(v.LastUpdateTimestamp),
	}
	if v.StartTimestamp >= 0 {
		m.Start = time.UnixMilli(v.StartTimestamp)
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.Partitions = append(m.Partitions, TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	slices.SortFunc(m.Partitions, compareTP)
	m.Partitions = slices.Compact(m.Partitions)
	return m, true, nil
}
