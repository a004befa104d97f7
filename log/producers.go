package log

import (
	"errors"

	"github.com/weir-broker/weir/log/batch"
)

// producerLedger adapts the pure idempotent-producer state (producer_state.go)
// to the partition: Append checks and records on a clone (begin) and keeps
// the clone only once the bytes are written, so a failed append leaves the
// state unchanged. Writer only.
type producerLedger struct {
	s *producerStates
}

// duplicate describes a batch already in the log.
type duplicate struct {
	ok          bool
	first, last int64
	maxTs       int64 // the original batch's maxTimestamp (its append time under LogAppendTime)
}

// errDuplicateInMulti rejects a retry that arrives together with new batches:
// Kafka's idempotent producers send one batch per partition per request.
var errDuplicateInMulti = errors.New("log: duplicate batch in a multi-batch append")

func newProducerLedger() *producerLedger { return &producerLedger{s: newProducerStates()} }

// begin returns a copy to check and record an append on.
func (l *producerLedger) begin() *producerLedger { return &producerLedger{s: l.s.clone()} }

// check applies the sequence and epoch rules to b.
func (l *producerLedger) check(b batch.Batch) (duplicate, error) {
	pb, err := l.s.check(b)
	if err != nil || pb == nil {
		return duplicate{}, err
	}
	return duplicate{ok: true, first: pb.firstOffset, last: pb.lastOffset, maxTs: pb.maxTimestamp}, nil
}

// record notes b after its offsets are assigned; b may be a header only.
func (l *producerLedger) record(b batch.Batch) { l.s.record(b) }

func (l *producerLedger) marshal() []byte { return l.s.marshal() }

func unmarshalProducerLedger(data []byte) (*producerLedger, error) {
	s, err := unmarshalProducerStates(data)
	if err != nil {
		return nil, err
	}
	return &producerLedger{s: s}, nil
}
