package replica

import (
	"fmt"

	"github.com/weir-broker/weir/log"
)

// lastStable is the last stable offset of l given its high watermark hw.
func lastStable(l *log.Partition, hw int64) int64 {
	if f := l.FirstUnstableOffset(); f >= 0 && f < hw {
		return f
	}
	return hw
}

// ReadCommitted serves a read_committed consumer (isolation level 1): like
// Read, but only up to the last stable offset, with the aborted
// transactions whose records the result may hold, so the client can drop
// them.
func (p *Partition) ReadCommitted(offset int64, maxBytes int) (ReadResult, []log.AbortedTxn, error) {
	r, err := p.read(offset, maxBytes, false, true)
	if err != nil || r.Log == nil {
		return r, nil, err
	}
	return r, p.log.AbortedTransactions(offset, r.LastStableOffset), nil
}

// AppendMarker writes a transaction marker (a control batch, KIP-98) for
// producerID at epoch: commit or abort. It is the transaction
// coordinator's path; producers cannot write control batches. The marker
// is checked against the producer state like any batch: an epoch older than
// the partition has seen wraps log.ErrInvalidProducerEpoch.
func (p *Partition) AppendMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32) (log.AppendResult, error) {
	if p.closed.Load() {
		return log.AppendResult{}, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	b, err := log.AppendMarker(nil, producerID, epoch, commit, coordinatorEpoch, p.now().UnixMilli())
	if err != nil {
		return log.AppendResult{}, fmt.Errorf("replica: %s: build marker: %w", p.tp, err)
	}
	o := log.AppendOptions{LeaderEpoch: p.LeaderEpoch()}
	res, err := p.log.Append(b, o)
	if err != nil {
		return res, fmt.Errorf("replica: %s: append marker: %w", p.tp, err)
	}
	if !p.advanceHighWatermark(res.LastOffset+1) && p.notify != nil {
		p.notify(p.tp)
	}
	return res, nil
}

// AvailableStableBytes is AvailableBytes for a read_committed consumer: it
// counts only bytes below the last stable offset, so a long poll waits
// while a transaction is open instead of returning nothing at once, and it
// completes when the stable data runs past offset's segment.
func (p *Partition) AvailableStableBytes(offset int64, limit int) (n int64, complete bool) {
	return p.available(offset, limit, false, true)
}
