package log

import (
	"slices"

	"github.com/weir-broker/weir/log/batch"
)

// Compaction (cleanup.policy=compact) keeps, for every key, only the record
// with the newest offset; offsets are never changed, so a compacted log has
// gaps. This file is the pure part: which segments to clean, the key map,
// and what to keep of one batch. cleaner.go does the I/O.
//
// What is kept, per record:
//   - a record without a key: always (Kafka refuses them on compacted topics
//     at produce time; the cleaner does not lose what got in);
//   - a record whose key has a newer record in the cleaned range: dropped;
//   - the newest record of its key: kept, unless it is a tombstone (null
//     value) whose timestamp is more than delete.retention.ms old;
//   - a record of an aborted transaction: dropped, and never counted as
//     the newest of its key (so the committed value before it stays);
//   - control batches (transaction markers): kept whole.
//
// Per batch: a batch that keeps every record is copied byte for byte. One
// that keeps some is rebuilt with the same base offset, lastOffsetDelta,
// codec, producer id/epoch/base sequence, attributes and leader epoch; the
// kept records keep their offset deltas. One that keeps none is dropped,
// except that it is kept as an empty batch (record count 0, same header
// fields) when it has a producer id, so the producer's epoch and sequences
// still rebuild from the log (Kafka keeps a producer's last batch the same
// way), and when it is the last batch of its segment, so the segment still
// ends at the offset where the next one starts and recovery sees no hole.
//
// Transactions (KIP-98): a transactional batch of producer P belongs to an
// aborted transaction when its base offset lies in [FirstOffset, LastOffset)
// of one of P's aborted transactions (LastOffset is the abort marker). Such
// batches add nothing to the key map and lose all their records when
// rewritten (the batch stays, empty, for its producer fields). The cleaner
// never cleans a segment that reaches the first unstable offset (the first
// offset of the oldest open transaction): whether those records commit or
// abort is not known yet.

// cleanCandidate is what the plan needs to know of one sealed segment.
type cleanCandidate struct {
	base, next int64
	size       int64
	maxTs      int64 // largest batch timestamp, -1 if none
}

// planCompaction returns how many of the oldest sealed segments (segs, in
// offset order, the active segment excluded) one pass should clean, or 0.
// Segments newer than min.compaction.lag.ms are never cleaned; the rest are
// when the dirty bytes (those at or after cleanedTo, the end of the last
// pass) make up at least min.cleanable.dirty.ratio of them, or when a dirty
// segment is older than max.compaction.lag.ms.
//
// firstUnstable is the first offset of the oldest open transaction, -1 when
// none is open: a segment that ends past it is never cleaned, nor any after.
func planCompaction(segs []cleanCandidate, cleanedTo int64, cfg Config, nowMs, firstUnstable int64) int {
	if !cfg.Compact() {
		return 0
	}
	n := 0
	var total, dirty int64
	overdue := false
	for _, s := range segs {
		if firstUnstable >= 0 && s.next > firstUnstable {
			break
		}
		if cfg.MinCompactionLagMs > 0 && (s.maxTs < 0 || nowMs-s.maxTs < cfg.MinCompactionLagMs) && s.size > 0 {
			break
		}
		n++
		total += s.size
		if s.next > cleanedTo {
			dirty += s.size
			if s.maxTs >= 0 && nowMs-s.maxTs > cfg.MaxCompactionLagMs {
				overdue = true
			}
		}
	}
	if n == 0 || dirty == 0 {
		return 0
	}
	if !overdue && float64(dirty) < cfg.MinCleanableDirtyRatio*float64(total) {
		return 0
	}
	return n
}

// abortedSet is the aborted transactions of a partition by producer id,
// each producer's in marker order.
type abortedSet map[int64][]AbortedTxn

// newAbortedSet indexes list (in marker order, as AbortedTransactions
// returns it).
func newAbortedSet(list []AbortedTxn) abortedSet {
	if len(list) == 0 {
		return nil
	}
	a := make(abortedSet)
	for _, t := range list {
		a[t.ProducerID] = append(a[t.ProducerID], t)
	}
	return a
}

// contains reports whether b is a data batch of an aborted transaction.
func (a abortedSet) contains(b batch.Batch) bool {
	if len(a) == 0 || !b.IsTransactional() || b.IsControl() || b.ProducerID() < 0 {
		return false
	}
	txns := a[b.ProducerID()]
	off := b.BaseOffset()
	// The first transaction whose marker is after off is the only one
	// that can hold it: one producer's transactions do not overlap.
	i, _ := slices.BinarySearchFunc(txns, off, func(t AbortedTxn, o int64) int {
		if t.LastOffset <= o {
			return -1
		}
		return 1
	})
	return i < len(txns) && txns[i].FirstOffset <= off
}

// offsetMap maps each key to the offset of its newest record.
type offsetMap struct {
	m map[string]int64
}

func newOffsetMap() *offsetMap { return &offsetMap{m: make(map[string]int64)} }

// add notes that key has a record at offset.
func (om *offsetMap) add(key []byte, offset int64) {
	if old, ok := om.m[string(key)]; !ok || offset > old {
		om.m[string(key)] = offset
	}
}

// len returns the number of keys mapped.
func (om *offsetMap) len() int { return len(om.m) }

// newest returns the offset of key's newest record, if any.
func (om *offsetMap) newest(key []byte) (int64, bool) {
	off, ok := om.m[string(key)]
	return off, ok
}

// keepRecord decides whether compaction keeps r, whose timestamp is ts (the
// batch's maxTimestamp for LogAppendTime). horizonMs is now minus
// delete.retention.ms: tombstones older than it go.
func keepRecord(r *batch.Record, ts int64, om *offsetMap, horizonMs int64) bool {
	if r.Key == nil {
		return true
	}
	if newest, ok := om.newest(r.Key); ok && r.Offset < newest {
		return false
	}
	return r.Value != nil || ts >= horizonMs
}

// filterStats counts what filterBatch dropped.
type filterStats struct {
	records, tombstones int64
}

// filterBatch appends to dst what compaction keeps of b (see the rules at
// the top of this file); last says b ends its segment; aborted holds the
// partition's aborted transactions. limit bounds
// decompression; it is the iterator to decode with (its buffer is reused).
// An error means b's records do not decode; the caller must then keep b as
// it is or give up.
func filterBatch(dst []byte, b batch.Batch, last bool, om *offsetMap, aborted abortedSet, horizonMs int64, limit int, it *batch.Iter) ([]byte, filterStats, error) {
	var st filterStats
	if b.IsControl() {
		return append(dst, b...), st, nil
	}
	if err := it.Reset(b, limit); err != nil {
		return dst, st, err
	}
	drop := aborted.contains(b)
	var kept []batch.Record
	total := 0
	for it.Next() {
		r := it.Record()
		total++
		ts := r.Timestamp
		if b.IsLogAppendTime() {
			ts = b.MaxTimestamp()
		}
		if !drop && keepRecord(r, ts, om, horizonMs) {
			c := *r
			c.Headers = append([]batch.Header(nil), r.Headers...)
			kept = append(kept, c)
			continue
		}
		st.records++
		if r.Value == nil {
			st.tombstones++
		}
	}
	if err := it.Err(); err != nil {
		return dst, filterStats{}, err
	}
	if len(kept) == total {
		return append(dst, b...), st, nil
	}
	if len(kept) == 0 && b.ProducerID() < 0 && !last {
		return dst, st, nil
	}
	o := batch.Options{
		Codec:                b.Codec(),
		BaseOffset:           b.BaseOffset(),
		PartitionLeaderEpoch: b.PartitionLeaderEpoch(),
		Idempotent:           true, // copy the producer fields as they are, -1 included
		ProducerID:           b.ProducerID(),
		ProducerEpoch:        b.ProducerEpoch(),
		BaseSequence:         b.BaseSequence(),
		Transactional:        b.IsTransactional(),
		LogAppendTime:        b.IsLogAppendTime(),
		KeepOffsetDeltas:     true,
		LastOffsetDelta:      b.LastOffsetDelta(),
		BaseTimestamp:        b.BaseTimestamp(),
		MaxTimestamp:         b.MaxTimestamp(),
	}
	out, err := batch.AppendBuild(dst, o, kept...)
	if err != nil {
		return dst, filterStats{}, err
	}
	return out, st, nil
}
