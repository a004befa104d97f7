package replica

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-broker/weir/log"
	"github.com/weir-broker/weir/log/batch"
)

// Errors a partition returns; the broker maps each to a Kafka error code.
var (
	// ErrPartitionClosed: the partition was deleted or the broker is
	// shutting down (NOT_LEADER_OR_FOLLOWER, so clients refresh metadata).
	ErrPartitionClosed = errors.New("replica: partition closed")
	// ErrMessageTooLarge: a batch exceeds max.message.bytes (MESSAGE_TOO_LARGE).
	ErrMessageTooLarge = errors.New("replica: batch larger than max.message.bytes")
	// ErrTransactionsUnsupported is no longer returned: transactional
	// batches are accepted, and the broker checks them against the
	// transaction coordinator. It still maps to INVALID_TXN_STATE.
	ErrTransactionsUnsupported = errors.New("replica: transactional batches are not supported")
	// ErrNotEnoughReplicas: acks=all with an ISR smaller than
	// min.insync.replicas; nothing was appended (NOT_ENOUGH_REPLICAS).
	ErrNotEnoughReplicas = errors.New("replica: ISR smaller than min.insync.replicas")
	// ErrNotEnoughReplicasAfterAppend: the batch was appended but the ISR
	// shrank below min.insync.replicas before it committed
	// (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
	ErrNotEnoughReplicasAfterAppend = errors.New("replica: ISR shrank below min.insync.replicas after append")
	// ErrRequestTimedOut: an acks=all produce whose batch did not commit
	// before the request timeout (REQUEST_TIMED_OUT).
	ErrRequestTimedOut = errors.New("replica: timed out waiting for the high watermark")
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String returns the Kafka directory name, topic-partition.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Partition is one topic-partition that this broker leads: the log plus the
// leader state Kafka keeps beside it (leader epoch, ISR, high watermark).
//
// Concurrency: every method is safe for concurrent use. Appends go straight
// to the log, which has a single writer inside; the high watermark is an
// atomic raised monotonically after each append; mu guards only the leader
// state (epoch, ISR, follower offsets) and is never held across log I/O.
type Partition struct {
	tp     TopicPartition
	log    *log.Partition
	now    func() time.Time
	notify func(TopicPartition) // wakes waiters after the high watermark moves

	cfg    atomic.Pointer[Config]
	hw     atomic.Int64
	closed atomic.Bool

	mu     sync.Mutex
	leader leaderState
}

func newPartition(tp TopicPartition, l *log.Partition, cfg Config, brokerID int32, now func() time.Time, notify func(TopicPartition)) *Partition {
	p := &Partition{tp: tp, log: l, now: now, notify: notify, leader: newLeaderState(brokerID, 0)}
	p.cfg.Store(&cfg)
	// A single-node leader starts with everything it has committed: Kafka
	// restores the HW from its checkpoint; alone in the ISR, ours is the LEO.
	p.hw.Store(l.LogEndOffset())
	return p
}

// TopicPartition returns the partition's name.
func (p *Partition) TopicPartition() TopicPartition { return p.tp }

// Log returns the underlying log, for admin paths that need it directly.
func (p *Partition) Log() *log.Partition { return p.log }

// Config returns the partition's current configuration.
func (p *Partition) Config() Config { return *p.cfg.Load() }

// SetConfig validates and applies a new configuration.
func (p *Partition) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("replica: %s: %w", p.tp, err)
	}
	if err := p.log.SetConfig(c.Log); err != nil {
		return fmt.Errorf("replica: %s: set log config: %w", p.tp, err)
	}
	p.cfg.Store(&c)
	return nil
}

// HighWatermark is the offset below which records are committed and visible
// to consumers.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LastStableOffset is the offset below which no transaction is open: the
// first offset of the oldest open transaction, or the high watermark if
// that is smaller. With no open transaction it equals the high watermark.
func (p *Partition) LastStableOffset() int64 { return lastStable(p.log, p.hw.Load()) }

// LogStartOffset is the first offset still in the log.
func (p *Partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// LogEndOffset is the offset the next appended record will get.
func (p *Partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// LeaderEpoch is the epoch stamped into batches appended by this leader.
func (p *Partition) LeaderEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader.epoch
}

// ISR returns a copy of the in-sync replica set.
func (p *Partition) ISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int32(nil), p.leader.isr...)
}

// BecomeLeader sets the leader epoch and ISR, as a LeaderAndIsr decision from
// the controller would.
func (p *Partition) BecomeLeader(epoch int32, isr []int32) {
	p.mu.Lock()
	p.leader.epoch = epoch
	p.leader.setISR(isr)
	p.mu.Unlock()
	if !p.advanceHighWatermark(p.log.LogEndOffset()) && p.notify != nil {
		// The ISR changed even if the HW did not: acks=all waiters
		// re-check min.insync.replicas.
		p.notify(p.tp)
	}
}

// UpdateFollower records the log end offset a follower reported by fetching,
// and advances the high watermark when the ISR allows. Only ISR members are
// tracked (until replica assignments reach this package), so a client
// posing as a replica can neither move the HW nor grow the map.
func (p *Partition) UpdateFollower(replicaID int32, leo int64) {
	p.mu.Lock()
	if replicaID == p.leader.replicaID || !slices.Contains(p.leader.isr, replicaID) {
		p.mu.Unlock()
		return
	}
	p.leader.followerLEO[replicaID] = leo
	p.mu.Unlock()
	p.advanceHighWatermark(p.log.LogEndOffset())
}

// advanceHighWatermark raises the high watermark to what the ISR allows,
// given leaderLEO, and wakes waiters if it moved, which it reports. It never
// lowers it.
func (p *Partition) advanceHighWatermark(leaderLEO int64) bool {
	p.mu.Lock()
	hw := p.leader.highWatermark(leaderLEO)
	p.mu.Unlock()
	for {
		cur := p.hw.Load()
		if hw <= cur {
			return false
		}
		if p.hw.CompareAndSwap(cur, hw) {
			break
		}
	}
	if p.notify != nil {
		p.notify(p.tp)
	}
	return true
}

// Append validates and appends one produce partition's records field (one or
// more v2 batches) and advances the high watermark. acks is the produce
// request's acks: for -1 (all) the ISR must be at least min.insync.replicas
// before anything is written. The records slice is modified in place (offsets,
// leader epoch, LogAppendTime). On error nothing is written.
func (p *Partition) Append(records []byte, acks int16) (log.AppendResult, error) {
	return p.AppendSummed(records, acks, nil)
}

// AppendSummed is Append for records inside a buffer summed as it was read
// (wire.Request.BlockSums): the batches' CRCs are checked from the sums.
func (p *Partition) AppendSummed(records []byte, acks int16, sums *batch.BlockSums) (log.AppendResult, error) {
	if p.closed.Load() {
		return log.AppendResult{}, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	cfg := p.cfg.Load()
	if err := checkBatches(records, cfg); err != nil {
		return log.AppendResult{}, fmt.Errorf("replica: %s: %w", p.tp, err)
	}
	p.mu.Lock()
	epoch := p.leader.epoch
	enough := p.leader.inSync(cfg.MinInsyncReplicas)
	p.mu.Unlock()
	if acks == -1 && !enough {
		return log.AppendResult{}, fmt.Errorf("replica: %s: %w", p.tp, ErrNotEnoughReplicas)
	}
	o := log.AppendOptions{LeaderEpoch: epoch, Sums: sums}
	if cfg.TimestampType == LogAppendTime {
		o.LogAppendTime = p.now().UnixMilli()
	}
	res, err := p.log.Append(records, o)
	if err != nil {
		return res, fmt.Errorf("replica: %s: append: %w", p.tp, err)
	}
	if !res.Duplicate {
		// Bound by this append's own end rather than the log's current end:
		// a concurrent append may not be durable yet.
		if !p.advanceHighWatermark(res.LastOffset+1) && p.notify != nil {
			// The HW waits for followers; their parked fetches wait for
			// exactly this data.
			p.notify(p.tp)
		}
	}
	return res, nil
}

// checkBatches applies the broker's own rules to each batch header before the
// log validates lengths and CRCs. Malformed framing is left to the log, which
// reports it precisely.
func checkBatches(records []byte, cfg *Config) error {
	for rest := records; len(rest) > 0; {
		n, err := batch.Size(rest)
		if err != nil || n > len(rest) || n < batch.HeaderSize {
			return nil
		}
		b := batch.Batch(rest[:n])
		if b.Magic() != batch.Magic {
			return nil
		}
		if n > int(cfg.MaxMessageBytes) {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, cfg.MaxMessageBytes)
		}
		if b.IsControl() {
			return &batch.Error{Reason: batch.ReasonControl, Detail: "control batch from a producer"}
		}
		rest = rest[n:]
	}
	return nil
}

// ReadResult is what a consumer fetch of one partition returns: whole batches
// as file regions (Log is nil when there is nothing to send) and the
// partition's offsets at the time of the read.
type ReadResult struct {
	Log              *log.ReadResult
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
}

// Bytes returns the number of record bytes in the result.
func (r *ReadResult) Bytes() int64 {
	if r.Log == nil {
		return 0
	}
	return r.Log.Bytes
}

// Release lets the log close files the result still references.
func (r *ReadResult) Release() {
	if r.Log != nil {
		r.Log.Release()
		r.Log = nil
	}
}

// Read returns committed batches from offset on, starting at the batch that
// contains offset, within maxBytes except that the first batch is whole
// (KIP-74). An offset outside [LogStartOffset, LogEndOffset] wraps
// log.ErrOffsetOutOfRange; one at or past the high watermark, or a maxBytes
// of 0 or less, returns no batches, only the offsets.
func (p *Partition) Read(offset int64, maxBytes int) (ReadResult, error) {
	return p.read(offset, maxBytes, false, false)
}

// ReadReplica serves a follower's fetch: the follower's log end offset is
// offset (it fetches from where its log ends), which may advance the high
// watermark, and the read goes up to the leader's log end offset, committed
// or not. The offsets returned are the leader's, high watermark included,
// which is how followers learn it.
func (p *Partition) ReadReplica(replicaID int32, offset int64, maxBytes int) (ReadResult, error) {
	if !p.closed.Load() && offset >= p.log.LogStartOffset() && offset <= p.log.LogEndOffset() {
		p.UpdateFollower(replicaID, offset)
	}
	return p.read(offset, maxBytes, true, false)
}

// read reads from offset up to the high watermark, up to the last stable
// offset for a read_committed consumer, or up to the log end offset for a
// follower.
func (p *Partition) read(offset int64, maxBytes int, follower, committed bool) (ReadResult, error) {
	if p.closed.Load() {
		return ReadResult{}, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	hw := p.hw.Load()
	leo := p.log.LogEndOffset()
	r := ReadResult{HighWatermark: hw, LastStableOffset: lastStable(p.log, hw), LogStartOffset: p.log.LogStartOffset()}
	if offset < r.LogStartOffset || offset > leo {
		return r, fmt.Errorf("replica: %s: fetch offset %d outside [%d, %d]: %w",
			p.tp, offset, r.LogStartOffset, leo, log.ErrOffsetOutOfRange)
	}
	bound := hw
	if follower {
		bound = leo
	} else if committed {
		bound = r.LastStableOffset
	}
	if offset >= bound || maxBytes <= 0 {
		return r, nil
	}
	lr, err := p.log.Read(offset, log.ReadOptions{MaxBytes: maxBytes, MaxOffset: bound})
	if err != nil {
		return r, fmt.Errorf("replica: %s: read at %d: %w", p.tp, offset, err)
	}
	r.Log = lr
	r.LogStartOffset = lr.LogStartOffset
	return r, nil
}

// AvailableBytes estimates how many bytes a fetch at offset would return, up
// to limit; long-poll fetches compare it with MinBytes. A consumer
// (follower false) counts committed bytes, a follower everything up to the
// log end offset. n is 0 when nothing is there past offset and at least 1
// otherwise; the log is read only when limit exceeds 1.
//
// complete reports that the fetch should be answered now whatever its
// MinBytes: the partition is closed or offset is out of range (the answer
// reports the error), or the data below the bound runs past the segment
// that holds offset. A read returns batches of one segment only, so waiting
// for more bytes in later segments could not make the answer larger; Kafka's
// DelayedFetch completes in that case too (fetch offset on an older segment
// than the high watermark). Counting the later segments instead would cost
// a read per segment and still answer with the first segment's bytes. The
// check compares segment bases in memory and reads no file.
func (p *Partition) AvailableBytes(offset int64, limit int, follower bool) (n int64, complete bool) {
	return p.available(offset, limit, follower, false)
}

// available is AvailableBytes up to the high watermark, the log end offset
// (follower) or the last stable offset (committed).
func (p *Partition) available(offset int64, limit int, follower, committed bool) (int64, bool) {
	if p.closed.Load() {
		return 0, true
	}
	hw := p.hw.Load()
	leo := p.log.LogEndOffset()
	if offset < p.log.LogStartOffset() || offset > leo {
		return 0, true
	}
	bound := hw
	if follower {
		bound = leo
	} else if committed {
		bound = lastStable(p.log, hw)
	}
	if offset >= bound {
		return 0, false
	}
	if limit <= 1 {
		return 1, false
	}
	if p.log.OnOlderSegment(offset, bound-1) {
		return 1, true
	}
	if p.log.HasBytes(offset, bound, int64(limit)) {
		// Known from the index: no need to read (behind the page cache
		// window that would be a direct read the fetch's own read repeats).
		return int64(limit), false
	}
	r, err := p.read(offset, limit, follower, committed)
	if err != nil {
		return 0, true
	}
	defer r.Release()
	return max(r.Bytes(), 1), false
}

// AckState reports whether an acks=all produce whose batch ended at
// lastOffset can be answered: nil once committed, ErrNotEnoughReplicasAfterAppend
// or ErrPartitionClosed if it never will be, and done=false while waiting.
func (p *Partition) AckState(lastOffset int64) (done bool, err error) {
	if p.closed.Load() {
		return true, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	p.mu.Lock()
	isr := len(p.leader.isr)
	p.mu.Unlock()
	switch acksAllState(lastOffset, p.hw.Load(), isr, p.cfg.Load().MinInsyncReplicas) {
	case ackDone:
		return true, nil
	case ackNotEnoughISR:
		return true, fmt.Errorf("replica: %s: %w", p.tp, ErrNotEnoughReplicasAfterAppend)
	}
	return false, nil
}

// OffsetForTimestamp returns the first committed offset whose timestamp is at
// least ts, with that timestamp. It wraps log.ErrNotFound when no committed
// record qualifies.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	if p.closed.Load() {
		return -1, -1, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	offset, timestamp, err = p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, fmt.Errorf("replica: %s: offset for timestamp %d: %w", p.tp, ts, err)
	}
	if offset >= p.hw.Load() {
		return -1, -1, fmt.Errorf("replica: %s: offset for timestamp %d not committed: %w", p.tp, ts, log.ErrNotFound)
	}
	return offset, timestamp, nil
}

// DeleteRecordsBefore advances the log start offset to offset (-1 means the
// high watermark) and returns the new low watermark. An offset above the high
// watermark wraps log.ErrOffsetOutOfRange.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	if p.closed.Load() {
		return -1, fmt.Errorf("replica: %s: %w", p.tp, ErrPartitionClosed)
	}
	hw := p.hw.Load()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("replica: %s: delete records before %d, high watermark %d: %w",
			p.tp, offset, hw, log.ErrOffsetOutOfRange)
	}
	low, err := p.log.DeleteRecordsBefore(offset)
	if err != nil {
		return -1, fmt.Errorf("replica: %s: delete records before %d: %w", p.tp, offset, err)
	}
	return low, nil
}

// close marks the partition closed, so waiters see it gone, and closes or
// deletes the log.
func (p *Partition) close(remove bool) error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.notify != nil {
		p.notify(p.tp)
	}
	var err error
	if remove {
		err = p.log.Delete()
	} else {
		err = p.log.Close()
	}
	if err != nil {
		return fmt.Errorf("replica: %s: close: %w", p.tp, err)
	}
	return nil
}
