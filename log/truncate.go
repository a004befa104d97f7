package log

import (
	"errors"
	"fmt"
	"slices"
)

// Truncate removes every batch that holds an offset >= offset, as a follower
// does before it fetches from a new leader (KIP-101). Offsets are cut at
// batch boundaries: if offset falls inside a batch, that whole batch goes and
// the log end offset becomes its base offset. Truncating below the log start
// offset (or at it) empties the log and restarts it at offset. Readers must not be
// reading the removed range (the broker bounds reads by the high watermark,
// and truncation never goes below it); removed segments stay readable by
// results already handed out.
func (p *Partition) Truncate(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkWritable(); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("%w: truncate to %d", ErrOffsetOutOfRange, offset)
	}
	if offset >= p.endOffset.Load() {
		return nil
	}
	p.dropAhead() // its bytes may be cut and written anew
	if err := p.waitSealedFlushed(); err != nil {
		return err
	}
	if err := p.flushIndexes(p.segs.Load().active()); err != nil {
		return err
	}
	var err error
	full := offset <= p.startOffset.Load() || offset <= p.segs.Load().segs[0].base
	if full {
		err = p.truncateFully(offset)
	} else {
		err = p.truncateInside(offset)
	}
	if err != nil {
		return p.fail(err)
	}
	leo := p.endOffset.Load()
	if leo < p.startOffset.Load() {
		// The cut went through the batch holding the log start offset.
		if err := p.writeOffsetCheckpoint(logStartCheckpoint, leo); err != nil {
			return p.fail(err)
		}
		p.startOffset.Store(leo)
	}
	p.sync.reset(leo)
	p.unflushed = 0
	if p.recoveryPoint > leo {
		if err := p.setRecoveryPoint(leo); err != nil {
			return err
		}
	}
	if p.epochs.truncateFrom(leo) {
		if err := p.epochs.save(p); err != nil {
			return err
		}
	}
	// Producer state: newest snapshot at or below leo, replayed to leo. A
	// full truncation starts the producers afresh, as Kafka's
	// truncateFullyAndStartAt does.
	var snaps []int64
	if err := p.removeSnapshots(func(off int64) bool {
		if off <= leo && !full {
			snaps = append(snaps, off)
			return false
		}
		return true
	}); err != nil {
		return err
	}
	slices.Sort(snaps)
	if err := p.rebuildProducers(snaps, leo); err != nil {
		return err
	}
	return p.rebuildTxns(false)
}

// truncateFully drops every segment and restarts the log at offset.
func (p *Partition) truncateFully(offset int64) error {
	l := p.segs.Load()
	if err := p.writeOffsetCheckpoint(logStartCheckpoint, offset); err != nil {
		return err
	}
	for _, s := range l.segs {
		if err := s.remove(); err != nil {
			return err
		}
	}
	s, err := openSegmentFiles(p.fs, p.dir, offset, true)
	if err != nil {
		return err
	}
	s.mem.Store(newMemIndex())
	s.next.Store(offset)
	if err := p.fs.SyncDir(p.dir); err != nil {
		s.release()
		return fmt.Errorf("log: sync dir: %w", err)
	}
	p.segs.Store(&segList{segs: []*segment{s}})
	for _, old := range l.segs {
		old.release()
	}
	p.startOffset.Store(offset)
	p.endOffset.Store(offset)
	return nil
}

// truncateInside cuts the log inside its segments: offset > first base.
func (p *Partition) truncateInside(offset int64) error {
	l := p.segs.Load()
	i := l.find(offset)
	if l.segs[i].base == offset {
		i-- // the whole segment goes; the one before ends exactly at offset
	}
	s := l.segs[i]
	cut, newNext, err := p.findCut(s, offset)
	if err != nil {
		return err
	}
	for _, d := range l.segs[i+1:] {
		if err := d.remove(); err != nil {
			return err
		}
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return fmt.Errorf("log: sync dir: %w", err)
	}
	// Cut the log and its indexes (durably: a crash must not bring the cut
	// batches back), then reopen s as the active segment.
	if err := p.truncateSegmentFile(s, cut); err != nil {
		return err
	}
	if err := truncateIndexFiles(s, cut, newNext); err != nil {
		return err
	}
	s.pendingTime = nil
	s.lastTimeTs, s.maxTsOffset, s.firstBatchTs, s.sinceIndex = -1, -1, -1, 0
	s.maxTs.Store(-1)
	if h, ok := readFirstHeader(s); ok && cut > 0 {
		s.firstBatchTs = h.maxTs
	}
	s.verified.Store(min(s.verified.Load(), cut))
	if _, err := p.openActiveTail(s); err != nil {
		return err
	}
	p.segs.Store(&segList{segs: append([]*segment(nil), l.segs[:i+1]...)})
	p.endOffset.Store(s.next.Load())
	for _, d := range l.segs[i+1:] {
		d.release()
	}
	if s.next.Load() != newNext {
		return fmt.Errorf("log: truncate to %d: segment %020d ends at %d after the cut, expected %d", offset, s.base, s.next.Load(), newNext)
	}
	return nil
}

// findCut returns the position of the batch of s that contains offset (or
// the segment size if none does) and the offset that follows the batches
// kept.
func (p *Partition) findCut(s *segment, offset int64) (int64, int64, error) {
	limit := s.size.Load()
	ix, fi := s.index()
	// An index entry holds the last offset of the batch at its position, so
	// the entry at or below offset-1 is a batch that is kept whole.
	pos := floorEntry(ix, uint32(min(max(offset-1-s.base, 0), 1<<32-1)), limit)
	if fi != nil && fi.err != nil {
		return 0, 0, fmt.Errorf("log: read index of %s: %w", s.logPath(), fi.err)
	}
	sc := newScanner(s, limit)
	defer sc.done()
	next := s.base
	if pos > 0 {
		if h, err := sc.header(pos); err == nil && h.last < offset {
			next, pos = h.last+1, pos+h.size
		} else {
			pos = 0 // the entry does not hold: scan the segment
		}
	}
	fromIndex := pos > 0
	for pos < limit {
		h, err := sc.header(pos)
		if err != nil && fromIndex && errors.Is(err, ErrCorrupt) {
			// The index may be what is damaged: scan from the start.
			next, pos, fromIndex = s.base, 0, false
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if h.last >= offset {
			return pos, next, nil
		}
		next = h.last + 1
		pos += h.size
	}
	return limit, next, nil
}

// truncateIndexFiles drops index entries at or past the cut.
func truncateIndexFiles(s *segment, cut, newNext int64) error {
	n, err := s.offIdx.Size()
	if err != nil {
		return fmt.Errorf("log: size of index %020d: %w", s.base, err)
	}
	fi := &fileIndex{f: s.offIdx, n: n / offsetEntrySize}
	k := int64(0)
	for k < fi.n {
		_, pos := unpackEntry(fi.at(k))
		if int64(pos) >= cut {
			break
		}
		k++
	}
	if fi.err != nil {
		return fmt.Errorf("log: read index %020d: %w", s.base, fi.err)
	}
	if err := s.offIdx.Truncate(k * offsetEntrySize); err != nil {
		return fmt.Errorf("log: truncate index %020d: %w", s.base, err)
	}
	tn, err := s.timeIdx.Size()
	if err != nil {
		return fmt.Errorf("log: size of time index %020d: %w", s.base, err)
	}
	t := int64(0)
	for ; t < tn/timeEntrySize; t++ {
		_, rel, err := readTimeEntry(s.timeIdx, t)
		if err != nil {
			return fmt.Errorf("log: read time index %020d: %w", s.base, err)
		}
		if s.base+int64(rel) >= newNext {
			break
		}
	}
	if err := s.timeIdx.Truncate(t * timeEntrySize); err != nil {
		return fmt.Errorf("log: truncate time index %020d: %w", s.base, err)
	}
	return nil
}
