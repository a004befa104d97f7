package log

import (
	"fmt"
	"math"
)

// RetentionResult reports what EnforceRetention deleted.
type RetentionResult struct {
	SegmentsDeleted int
	BytesDeleted    int64
	LogStartOffset  int64 // after the deletion
}

// segInfo is what the retention plan needs to know of a segment.
type segInfo struct {
	size  int64
	maxTs int64 // largest timestamp, -1 if none
}

// retentionPlan returns how many of the oldest segments retention.ms and
// retention.bytes allow to delete (Kafka's rules: a segment expires when its
// largest timestamp is older than retention.ms; oldest segments go while the
// rest still holds at least retention.bytes). It is pure.
func retentionPlan(segs []segInfo, cfg Config, nowMs int64) int {
	if !cfg.Delete() {
		return 0
	}
	n := 0
	if cfg.RetentionMs >= 0 {
		for n < len(segs) && segs[n].size > 0 && segs[n].maxTs >= 0 && nowMs-segs[n].maxTs > cfg.RetentionMs {
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		var total int64
		for _, s := range segs {
			total += s.size
		}
		diff := total - cfg.RetentionBytes
		k := 0
		for k < len(segs) && segs[k].size > 0 && diff-segs[k].size >= 0 {
			diff -= segs[k].size
			k++
		}
		n = max(n, k)
	}
	return n
}

// EnforceRetention deletes the oldest segments that retention.ms or
// retention.bytes (cleanup.policy delete) no longer allow, advancing the log
// start offset. When every segment has expired the active one is rolled
// first, so the partition keeps an empty active segment at its end offset.
// Readers holding results keep the deleted files until they release them.
func (p *Partition) EnforceRetention() (RetentionResult, error) {
	return p.EnforceRetentionBelow(math.MaxInt64)
}

// EnforceRetentionBelow is EnforceRetention that only deletes segments whose
// records all lie below limit, as Kafka deletes only below the high
// watermark (a leader must not drop what followers have not copied yet).
func (p *Partition) EnforceRetentionBelow(limit int64) (RetentionResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkWritable(); err != nil {
		return RetentionResult{}, err
	}
	l := p.segs.Load()
	infos := make([]segInfo, len(l.segs))
	for i, s := range l.segs {
		infos[i] = segInfo{size: s.size.Load(), maxTs: s.maxTs.Load()}
	}
	n := retentionPlan(infos, p.cfg, p.now().UnixMilli())
	for n > 0 && l.segs[n-1].next.Load() > limit {
		n--
	}
	if n == 0 {
		return RetentionResult{LogStartOffset: p.startOffset.Load()}, nil
	}
	if n == len(l.segs) {
		if _, err := p.roll(p.endOffset.Load()); err != nil {
			return RetentionResult{}, err
		}
		l = p.segs.Load()
	}
	res, err := p.deleteOldest(n, l.segs[n].base)
	return res, err
}

// deleteOldest removes the first n segments and moves the log start offset
// to at least start. Called with mu held; n < number of segments.
func (p *Partition) deleteOldest(n int, start int64) (RetentionResult, error) {
	l := p.segs.Load()
	start = max(start, p.startOffset.Load())
	if start != p.startOffset.Load() {
		if err := p.writeOffsetCheckpoint(logStartCheckpoint, start); err != nil {
			return RetentionResult{}, err
		}
		p.startOffset.Store(start)
	}
	if err := p.waitSealedFlushed(); err != nil {
		return RetentionResult{}, err
	}
	res := RetentionResult{LogStartOffset: start}
	kept := append([]*segment(nil), l.segs[n:]...)
	p.segs.Store(&segList{segs: kept})
	var firstErr error
	for _, s := range l.segs[:n] {
		res.SegmentsDeleted++
		res.BytesDeleted += s.size.Load()
		if err := s.remove(); err != nil && firstErr == nil {
			firstErr = err
		}
		s.release()
	}
	if err := p.fs.SyncDir(p.dir); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("log: sync dir: %w", err)
	}
	if p.epochs.truncateBefore(start) {
		if err := p.epochs.save(p); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	// Keep the newest snapshot at or below the new first segment.
	first := kept[0].base
	newest := int64(-1)
	if err := p.removeSnapshots(func(off int64) bool {
		if off <= first {
			newest = max(newest, off)
		}
		return false
	}); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := p.removeSnapshots(func(off int64) bool { return off < newest }); err != nil && firstErr == nil {
		firstErr = err
	}
	return res, firstErr
}

// DeleteRecordsBefore advances the log start offset to offset (Kafka's
// DeleteRecords), persists it, and deletes the segments wholly below it. It
// returns the new log start offset (the low watermark). Offsets past the log
// end offset give ErrOffsetOutOfRange; an offset at or below the current
// start changes nothing.
func (p *Partition) DeleteRecordsBefore(offset int64) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkWritable(); err != nil {
		return 0, err
	}
	leo := p.endOffset.Load()
	if offset > leo || offset < 0 {
		return 0, fmt.Errorf("%w: delete records before %d, log end offset %d", ErrOffsetOutOfRange, offset, leo)
	}
	if offset <= p.startOffset.Load() {
		return p.startOffset.Load(), nil
	}
	l := p.segs.Load()
	n := 0
	for n < len(l.segs) && l.segs[n].next.Load() <= offset && l.segs[n].size.Load() > 0 {
		n++
	}
	if n == len(l.segs) {
		if _, err := p.roll(leo); err != nil {
			return 0, err
		}
	}
	if _, err := p.deleteOldest(n, offset); err != nil {
		return p.startOffset.Load(), err
	}
	return p.startOffset.Load(), nil
}
