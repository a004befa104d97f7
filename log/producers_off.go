//go:build !weir_producer_state

package log

import (
	"errors"

	"github.com/weir-broker/weir/log/batch"
)

// producerLedger is the idempotent-producer bookkeeping of a partition. In
// this build it accepts every batch: the sequence checks are compiled in with
// the weir_producer_state build tag (producers_on.go).
type producerLedger struct{}

// duplicate describes a batch already in the log.
type duplicate struct {
	ok          bool
	first, last int64
}

var errDuplicateInMulti = errors.New("log: duplicate batch in a multi-batch append")

func newProducerLedger() *producerLedger                       { return &producerLedger{} }
func (l *producerLedger) begin() *producerLedger               { return l }
func (l *producerLedger) check(batch.Batch) (duplicate, error) { return duplicate{}, nil }
func (l *producerLedger) record(batch.Batch)                   {}
func (l *producerLedger) marshal() []byte                      { return nil }
func unmarshalProducerLedger([]byte) (*producerLedger, error)  { return &producerLedger{}, nil }
