package log

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/weir-broker/weir/log/batch"
)

// Header positions the log rewrites in place (see the package doc).
const (
	posAttributes   = 21
	posMaxTimestamp = 35
)

// AppendOptions tunes one Append.
type AppendOptions struct {
	// LeaderEpoch is stamped into every batch (outside the CRC) unless
	// KeepOffsets is set, in which case the batches keep the leader's epochs.
	LeaderEpoch int32
	// LogAppendTime, when > 0, switches the batches to LogAppendTime with
	// this time (ms): the timestamp-type bit and maxTimestamp are rewritten
	// and the CRC recomputed.
	LogAppendTime int64
	// KeepOffsets is for replication: batches carry their offsets and leader
	// epochs, the first must start at or after the log end offset, and each
	// must follow the previous one. The idempotent-producer rules are not
	// applied (the leader did), but the producer state records the batches.
	KeepOffsets bool
	// Sums, when b lies in the buffer they describe, supply the batches'
	// CRCs (batch.BlockSums): taken while b arrived, they spare validation
	// from reading b again. nil reads b in full.
	Sums *batch.BlockSums
}

// AppendResult reports where an Append put its records.
type AppendResult struct {
	FirstOffset   int64 // offset of the first record appended (or of the duplicate)
	LastOffset    int64 // offset of the last record
	LogAppendTime int64 // the LogAppendTime used, or -1
	Duplicate     bool  // an idempotent retry: nothing was written
}

// Append validates and appends the batches in b (one produce partition's
// records field: one or more v2 batches). Every batch is validated before a
// byte is written; on error the log is unchanged. Offsets are assigned from
// the log end offset by rewriting each batch's baseOffset in place (b is
// modified), and the bytes are then stored exactly. With FsyncAlways Append
// returns once the data is durable.
func (p *Partition) Append(b []byte, o AppendOptions) (AppendResult, error) {
	nb, err := validateBatches(b, o.Sums)
	if err != nil {
		return AppendResult{}, err
	}
	always := p.policy == FsyncAlways
	if always {
		p.sync.enter()
	}
	p.mu.Lock()
	res, needSync, err := p.appendLocked(b, nb, o)
	p.mu.Unlock()
	if err != nil || !needSync {
		if always {
			p.sync.arrive()
		}
		return res, err
	}
	if err := p.syncTo(res.LastOffset+1, always); err != nil {
		return AppendResult{}, fmt.Errorf("log: append: %w", err)
	}
	return res, nil
}

// validateBatches parses every batch in b (CRC included, from sums where
// they cover it) and returns how many there are.
func validateBatches(b []byte, sums *batch.BlockSums) (int, error) {
	n := 0
	for pos := 0; pos < len(b); n++ {
		bt, err := batch.ParseSummed(b[pos:], sums)
		if err != nil {
			return 0, fmt.Errorf("log: append: batch %d at byte %d: %w", n, pos, err)
		}
		pos += len(bt)
	}
	if n == 0 {
		return 0, ErrEmptyAppend
	}
	return n, nil
}

func (p *Partition) appendLocked(b []byte, nb int, o AppendOptions) (AppendResult, bool, error) {
	if err := p.checkWritable(); err != nil {
		return AppendResult{}, false, err
	}
	leo := p.endOffset.Load()
	res := AppendResult{FirstOffset: leo, LogAppendTime: -1}

	// Assign offsets, epochs and times; check the producers on a copy.
	var ledger *producerLedger
	next := leo
	var records int64
	maxTs := int64(-1)
	for pos := 0; pos < len(b); {
		bt := batch.Batch(b[pos : pos+batchSize(b[pos:])])
		first := pos == 0
		pos += len(bt)
		if o.KeepOffsets {
			if bt.BaseOffset() < next {
				return AppendResult{}, false, fmt.Errorf("%w: batch at offset %d, log end offset %d", ErrInvalidOffset, bt.BaseOffset(), next)
			}
			if first {
				res.FirstOffset = bt.BaseOffset()
			}
		}
		// Replicated batches were checked by the leader: a follower records
		// them without judging (as Kafka's replication-origin appends).
		if bt.ProducerID() >= 0 && !o.KeepOffsets {
			if ledger == nil {
				ledger = p.producers.begin()
			}
			dup, err := ledger.check(bt)
			if err != nil {
				return AppendResult{}, false, fmt.Errorf("log: append: %w", err)
			}
			if dup.ok {
				if nb != 1 {
					return AppendResult{}, false, fmt.Errorf("log: append: duplicate batch among %d batches: %w", nb, errDuplicateInMulti)
				}
				res := AppendResult{FirstOffset: dup.first, LastOffset: dup.last, LogAppendTime: -1, Duplicate: true}
				if o.LogAppendTime > 0 {
					res.LogAppendTime = dup.maxTs // the original append's time, as Kafka answers
				}
				return res, false, nil
			}
		}
		if !o.KeepOffsets {
			bt.SetBaseOffset(next)
			bt.SetPartitionLeaderEpoch(o.LeaderEpoch)
			if o.LogAppendTime > 0 {
				attrs := binary.BigEndian.Uint16(bt[posAttributes:]) | batch.TimestampTypeBit
				binary.BigEndian.PutUint16(bt[posAttributes:], attrs)
				binary.BigEndian.PutUint64(bt[posMaxTimestamp:], uint64(o.LogAppendTime))
				bt.SetCRC()
				res.LogAppendTime = o.LogAppendTime
			}
		}
		if bt.LastOffset() < bt.BaseOffset() || bt.LastOffset() == math.MaxInt64 {
			return AppendResult{}, false, fmt.Errorf("%w: batch at offset %d overflows int64", ErrInvalidOffset, bt.BaseOffset())
		}
		if bt.ProducerID() >= 0 && ledger == nil {
			ledger = p.producers.begin()
		}
		if ledger != nil && bt.ProducerID() >= 0 {
			ledger.record(bt)
		}
		next = bt.NextOffset()
		records += int64(bt.LastOffsetDelta()) + 1
		maxTs = max(maxTs, bt.MaxTimestamp())
	}
	res.LastOffset = next - 1

	act := p.segs.Load().active()
	if p.shouldRoll(act, int64(len(b)), nb, res.FirstOffset, next-1, maxTs) {
		var err error
		if act, err = p.roll(res.FirstOffset); err != nil {
			return AppendResult{}, false, err
		}
	}
	if err := p.writeBatches(act, b); err != nil {
		return AppendResult{}, false, err
	}
	if ledger != nil {
		p.producers = ledger
		observeTxns(&p.txns, b, p.startOffset.Load())
	}
	if o.KeepOffsets {
		for pos := 0; pos < len(b); {
			bt := batch.Batch(b[pos : pos+batchSize(b[pos:])])
			pos += len(bt)
			p.epochs.assign(bt.PartitionLeaderEpoch(), bt.BaseOffset(), p)
		}
	} else {
		p.epochs.assign(o.LeaderEpoch, res.FirstOffset, p)
	}
	if p.unflushed == 0 {
		p.oldestDirty = p.now()
	}
	p.unflushed += records
	needSync := p.policy == FsyncAlways
	if p.unflushed >= p.cfg.FlushMessages {
		needSync = true
		p.unflushed = 0
	}
	return res, needSync, nil
}

// batchSize reads the size of an already validated batch.
func batchSize(b []byte) int {
	return batch.LogOverhead + int(binary.BigEndian.Uint32(b[8:]))
}

// shouldRoll reports whether an append of n bytes in nb batches with offsets
// [first, last] must go to a new segment.
func (p *Partition) shouldRoll(s *segment, n int64, nb int, first, last, maxTs int64) bool {
	size := s.size.Load()
	if size == 0 {
		// Only a replicated append far past an empty segment's base moves it.
		return last-s.base > math.MaxInt32
	}
	switch {
	case size+n > p.cfg.SegmentBytes:
		return true
	case last-s.base > math.MaxInt32 || first < s.base:
		return true
	case (s.mem.Load().len()+int64(nb))*offsetEntrySize > p.cfg.SegmentIndexBytes:
		return true
	case (s.timeEntries+int64(nb))*timeEntrySize > p.cfg.SegmentIndexBytes:
		return true
	}
	rollTs := s.firstBatchTs
	if rollTs < 0 {
		return false
	}
	if s.rollJitter < 0 {
		s.rollJitter = 0
		if j := min(p.cfg.SegmentJitterMs, p.cfg.SegmentMs); j > 0 {
			s.rollJitter = rand.Int64N(j) // Kafka's segment.jitter.ms
		}
	}
	return p.now().UnixMilli()-rollTs > p.cfg.SegmentMs-s.rollJitter
}

// writeBatches writes validated, offset-assigned batches at the end of the
// active segment, indexes them and publishes the new end.
func (p *Partition) writeBatches(s *segment, b []byte) error {
	pos := s.size.Load()
	p.reserve(s, pos+int64(len(b)), int64(len(b)))
	if _, err := s.log.WriteAt(b, pos); err != nil {
		if terr := s.log.Truncate(pos); terr != nil {
			return p.fail(fmt.Errorf("log: append to %s failed (%w) and could not be undone: %v", s.logPath(), err, terr))
		}
		s.reservedTo = min(s.reservedTo, pos)
		return fmt.Errorf("log: append to %s: %w", s.logPath(), err)
	}
	m := s.mem.Load()
	interval := p.cfg.IndexIntervalBytes
	var next int64
	maxTs := s.maxTs.Load()
	for off := 0; off < len(b); {
		bt := batch.Batch(b[off : off+batchSize(b[off:])])
		bpos := pos + int64(off)
		off += len(bt)
		if s.firstBatchTs < 0 && bpos == 0 {
			s.firstBatchTs = bt.MaxTimestamp()
			if s.firstBatchTs < 0 {
				s.firstBatchTs = p.now().UnixMilli()
			}
		}
		if ts := bt.MaxTimestamp(); ts > maxTs {
			maxTs = ts
			s.maxTsOffset = bt.BaseOffset()
		}
		if s.sinceIndex >= interval || bpos == 0 {
			rel := uint32(bt.LastOffset() - s.base)
			if n := m.len(); n == 0 || func() bool { r, _ := unpackEntry(m.at(n - 1)); return r < rel }() {
				m.add(packEntry(rel, uint32(bpos)))
			}
			if maxTs > s.lastTimeTs {
				s.pendingTime = appendTimeEntry(s.pendingTime, maxTs, uint32(s.maxTsOffset-s.base))
				s.timeEntries++
				s.lastTimeTs = maxTs
			}
			s.sinceIndex = 0
		}
		s.sinceIndex += int64(len(bt))
		next = bt.NextOffset()
	}
	newSize := pos + int64(len(b))
	s.maxTs.Store(maxTs)
	s.next.Store(next)
	s.size.Store(newSize)
	p.endOffset.Store(next)
	p.cache.wrote(s, newSize)
	if m.len()-s.flushedIdx >= indexFlushEntries {
		return p.flushIndexes(s)
	}
	return nil
}

// roll seals the active segment and starts a new one at base. An empty
// active segment is replaced instead of sealed.
func (p *Partition) roll(base int64) (*segment, error) {
	old := p.segs.Load()
	act := old.active()
	if act.size.Load() == 0 {
		return p.replaceEmptyActive(base)
	}
	if err := p.flushIndexes(act); err != nil {
		return nil, err
	}
	// Final time index entry: the segment's largest timestamp (as Kafka does
	// on roll), so the sealed segment's max timestamp is its last entry.
	if mt := act.maxTs.Load(); mt > act.lastTimeTs && act.maxTsOffset >= act.base {
		act.pendingTime = appendTimeEntry(act.pendingTime, mt, uint32(act.maxTsOffset-act.base))
		act.timeEntries++
		act.lastTimeTs = mt
		if err := p.flushIndexes(act); err != nil {
			return nil, err
		}
	}
	if p.syncEachWrite() {
		if err := act.log.Sync(); err != nil {
			return nil, p.fail(fmt.Errorf("log: fsync %s at roll: %w", act.logPath(), err))
		}
	}
	releaseReserve(act)
	s, err := openSegmentFiles(p.fs, p.dir, base, true)
	if err != nil {
		return nil, err
	}
	s.mem.Store(newMemIndex())
	s.next.Store(base)
	if p.syncEachWrite() {
		// Appends to the new segment are acknowledged once fdatasynced: its
		// directory entry must be durable first. Otherwise the background
		// flush syncs the directory.
		if err := p.fs.SyncDir(p.dir); err != nil {
			s.release()
			return nil, fmt.Errorf("log: roll: sync dir: %w", err)
		}
	}
	// The sealed segment's index now lives in its file.
	act.fileIdx.Store(act.flushedIdx)
	act.mem.Store(nil)
	act.pendingTime = nil
	segs := make([]*segment, len(old.segs)+1)
	copy(segs, old.segs)
	segs[len(old.segs)] = s
	p.segs.Store(&segList{segs: segs})
	// The producer snapshot is taken now and written in the background.
	p.flushSealedAsync(act, snapshotJob{off: base, data: p.producers.marshal()})
	return s, nil
}

// replaceEmptyActive swaps the empty active segment for one at base.
func (p *Partition) replaceEmptyActive(base int64) (*segment, error) {
	old := p.segs.Load()
	act := old.active()
	if err := act.remove(); err != nil {
		return nil, err
	}
	s, err := openSegmentFiles(p.fs, p.dir, base, true)
	if err != nil {
		return nil, p.fail(err)
	}
	s.mem.Store(newMemIndex())
	s.next.Store(base)
	if err := p.fs.SyncDir(p.dir); err != nil {
		s.release()
		return nil, p.fail(fmt.Errorf("log: roll: sync dir: %w", err))
	}
	if len(old.segs) == 1 && base > p.startOffset.Load() {
		// The log was empty: it now starts at base.
		if err := p.writeOffsetCheckpoint(logStartCheckpoint, base); err != nil {
			s.release()
			return nil, p.fail(err)
		}
		p.startOffset.Store(base)
	}
	segs := append([]*segment(nil), old.segs...)
	segs[len(segs)-1] = s
	p.segs.Store(&segList{segs: segs})
	act.release()
	return s, nil
}
