package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/weir-broker/weir/log/batch"
)

// Idempotent producer state (KIP-98). For each producer id the partition
// keeps the current epoch and the last producerBatchesKept batches written
// with it, so a retried batch is recognised and answered with its original
// offsets instead of being written twice.

// Errors check returns; the broker maps them to Kafka error codes.
var (
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than the
	// one the partition has seen (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("log: invalid producer epoch")
	// ErrOutOfOrderSequence: the batch's base sequence is not the one that
	// follows the producer's last batch (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("log: out of order sequence number")
	// ErrProducerFenced is reserved for transactional producers fenced by a
	// newer epoch (PRODUCER_FENCED); check does not return it yet.
	ErrProducerFenced = errors.New("log: producer fenced")
	// ErrCorruptProducerSnapshot: a producer state snapshot fails its
	// checks (length, version, CRC, field ranges).
	ErrCorruptProducerSnapshot = errors.New("log: corrupt producer state snapshot")
)

// producerBatchesKept is how many batches per producer are remembered for
// duplicate detection: the maximum number of in-flight requests an
// idempotent client may have (Kafka's ProducerStateEntry keeps 5 too).
const producerBatchesKept = 5

// producerBatch is one batch a producer wrote, as remembered for duplicate
// detection.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTimestamp            int64 // the batch's maxTimestamp (the append time for LogAppendTime)
}

// producerEntry is the state of one producer id.
type producerEntry struct {
	epoch   int16
	batches []producerBatch // oldest first, at most producerBatchesKept, all of epoch
}

// producerStates is the idempotent producer state of one partition. It is a
// pure data structure with no I/O and no locking: the partition's single
// writer owns it; readers get a clone.
type producerStates struct {
	m map[int64]*producerEntry
}

// newProducerStates returns an empty state.
func newProducerStates() *producerStates {
	return &producerStates{m: make(map[int64]*producerEntry)}
}

// nextSequence is the sequence that follows s, wrapping at MaxInt32 to 0.
func nextSequence(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// check decides what to do with batch b before it is appended. It returns
// nil, nil when b should be appended; a cached batch when b is a retry of
// it (the caller reports that batch's offsets and writes nothing); or
// ErrInvalidProducerEpoch or ErrOutOfOrderSequence. Batches without a
// producer id (-1) are never checked. check does not change the state.
func (s *producerStates) check(b batch.Batch) (*producerBatch, error) {
	pid := b.ProducerID()
	if pid < 0 {
		return nil, nil
	}
	e := s.m[pid]
	if e == nil {
		// Unknown producer: new, or its state expired. Kafka accepts its
		// first batch at any sequence, and so do we.
		return nil, nil
	}
	epoch, seq := b.ProducerEpoch(), b.BaseSequence()
	if epoch < e.epoch {
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, pid, epoch, e.epoch)
	}
	if b.IsControl() || b.BaseSequence() < 0 {
		// Transaction markers and the offsets a group coordinator writes
		// in a transaction carry no sequence (Kafka's NO_SEQUENCE).
		return nil, nil
	}
	if epoch > e.epoch || len(e.batches) == 0 {
		if seq != 0 {
			return nil, fmt.Errorf("%w: producer %d epoch %d starts at sequence %d, want 0",
				ErrOutOfOrderSequence, pid, epoch, seq)
		}
		return nil, nil
	}
	last := b.LastSequence()
	for i := range e.batches {
		if c := &e.batches[i]; c.firstSeq == seq && c.lastSeq == last {
			dup := *c
			return &dup, nil
		}
	}
	if want := nextSequence(e.batches[len(e.batches)-1].lastSeq); seq != want {
		return nil, fmt.Errorf("%w: producer %d epoch %d sequence %d, want %d",
			ErrOutOfOrderSequence, pid, epoch, seq, want)
	}
	return nil, nil
}

// record notes a batch that has been appended with its final offsets. It is
// also how the state is rebuilt from batch headers on open, so it accepts
// whatever the log holds: a batch with an older epoch than the current one
// (possible only in a damaged or foreign log) is ignored.
func (s *producerStates) record(b batch.Batch) {
	pid := b.ProducerID()
	if pid < 0 {
		return
	}
	epoch := b.ProducerEpoch()
	e := s.m[pid]
	switch {
	case e == nil:
		e = &producerEntry{epoch: epoch}
		s.m[pid] = e
	case epoch < e.epoch:
		return
	case epoch > e.epoch:
		e.epoch = epoch
		e.batches = e.batches[:0]
	}
	if b.IsControl() || b.BaseSequence() < 0 {
		return
	}
	if len(e.batches) == producerBatchesKept {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerBatchesKept-1]
	}
	e.batches = append(e.batches, producerBatch{
		firstSeq:     b.BaseSequence(),
		lastSeq:      b.LastSequence(),
		firstOffset:  b.BaseOffset(),
		lastOffset:   b.LastOffset(),
		maxTimestamp: b.MaxTimestamp(),
	})
}

// clone returns a deep copy.
func (s *producerStates) clone() *producerStates {
	c := &producerStates{m: make(map[int64]*producerEntry, len(s.m))}
	for pid, e := range s.m {
		c.m[pid] = &producerEntry{epoch: e.epoch, batches: slices.Clone(e.batches)}
	}
	return c
}

// len returns the number of producers tracked.
func (s *producerStates) len() int { return len(s.m) }

// Snapshot format (file <offset>.snapshot), all integers big-endian:
//
//	version    int16   1
//	crc        uint32  CRC-32C (Castagnoli) of every byte after this field
//	count      int32   number of producers, in increasing producer id order
//	count × producer:
//	  producerId  int64
//	  epoch       int16
//	  nbatches    int8   0..5, oldest first
//	  nbatches × (firstSeq int32, lastSeq int32, firstOffset int64,
//	              lastOffset int64, maxTimestamp int64)
const (
	snapshotVersion     = 1
	snapshotHeaderSize  = 2 + 4 + 4
	snapshotProducerMin = 8 + 2 + 1
	snapshotBatchSize   = 4 + 4 + 8 + 8 + 8
)

var snapshotCRCTable = crc32.MakeTable(crc32.Castagnoli)

// marshal encodes the state as a versioned, CRC-protected snapshot.
func (s *producerStates) marshal() []byte {
	pids := make([]int64, 0, len(s.m))
	for pid := range s.m {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	be := binary.BigEndian
	out := make([]byte, snapshotHeaderSize, snapshotHeaderSize+len(pids)*(snapshotProducerMin+2*snapshotBatchSize))
	be.PutUint16(out, snapshotVersion)
	be.PutUint32(out[6:], uint32(len(pids)))
	for _, pid := range pids {
		e := s.m[pid]
		out = be.AppendUint64(out, uint64(pid))
		out = be.AppendUint16(out, uint16(e.epoch))
		out = append(out, byte(len(e.batches)))
		for _, b := range e.batches {
			out = be.AppendUint32(out, uint32(b.firstSeq))
			out = be.AppendUint32(out, uint32(b.lastSeq))
			out = be.AppendUint64(out, uint64(b.firstOffset))
			out = be.AppendUint64(out, uint64(b.lastOffset))
			out = be.AppendUint64(out, uint64(b.maxTimestamp))
		}
	}
	be.PutUint32(out[2:], crc32.Checksum(out[6:], snapshotCRCTable))
	return out
}

// unmarshalProducerStates decodes a snapshot written by marshal. Any damage
// is an error wrapping ErrCorruptProducerSnapshot; it never panics.
func unmarshalProducerStates(data []byte) (*producerStates, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptProducerSnapshot, fmt.Sprintf(format, args...))
	}
	be := binary.BigEndian
	if len(data) < snapshotHeaderSize {
		return nil, corrupt("%d bytes, header needs %d", len(data), snapshotHeaderSize)
	}
	if v := int16(be.Uint16(data)); v != snapshotVersion {
		return nil, corrupt("version %d", v)
	}
	if got, want := crc32.Checksum(data[6:], snapshotCRCTable), be.Uint32(data[2:]); got != want {
		return nil, corrupt("CRC %08x, stored %08x", got, want)
	}
	count := int32(be.Uint32(data[6:]))
	rest := data[snapshotHeaderSize:]
	if count < 0 || int64(count)*snapshotProducerMin > int64(len(rest)) {
		return nil, corrupt("%d producers in %d bytes", count, len(rest))
	}
	s := &producerStates{m: make(map[int64]*producerEntry, count)}
	prev := int64(-1)
	for i := range count {
		if len(rest) < snapshotProducerMin {
			return nil, corrupt("producer %d truncated", i)
		}
		pid := int64(be.Uint64(rest))
		e := &producerEntry{epoch: int16(be.Uint16(rest[8:]))}
		n := int(rest[10])
		rest = rest[snapshotProducerMin:]
		if pid <= prev {
			return nil, corrupt("producer id %d after %d", pid, prev)
		}
		prev = pid
		if n > producerBatchesKept || n*snapshotBatchSize > len(rest) {
			return nil, corrupt("producer %d: %d batches in %d bytes", pid, n, len(rest))
		}
		if n > 0 {
			e.batches = make([]producerBatch, n)
		}
		for j := range n {
			b := producerBatch{
				firstSeq:     int32(be.Uint32(rest)),
				lastSeq:      int32(be.Uint32(rest[4:])),
				firstOffset:  int64(be.Uint64(rest[8:])),
				lastOffset:   int64(be.Uint64(rest[16:])),
				maxTimestamp: int64(be.Uint64(rest[24:])),
			}
			rest = rest[snapshotBatchSize:]
			if b.firstSeq < 0 || b.lastSeq < 0 || b.firstOffset < 0 || b.lastOffset < b.firstOffset {
				return nil, corrupt("producer %d batch %d: sequences %d..%d offsets %d..%d",
					pid, j, b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset)
			}
			e.batches[j] = b
		}
		s.m[pid] = e
	}
	if len(rest) != 0 {
		return nil, corrupt("%d trailing bytes", len(rest))
	}
	return s, nil
}
