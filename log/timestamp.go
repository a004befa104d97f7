package log

import (
	"fmt"
)

// OffsetForTimestamp answers ListOffsets by timestamp: the first batch at or
// after the log start offset whose largest timestamp is >= ts. It returns the
// batch's base offset (or the log start offset if that is inside it) and the
// batch's timestamp: its base timestamp when that already reaches ts, else its
// max timestamp. ErrNotFound if no batch has a timestamp >= ts. Lock-free.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	if p.closed.Load() {
		return 0, 0, ErrClosed
	}
	start := p.startOffset.Load()
	l := p.segs.Load()
	for _, s := range l.segs {
		if s.next.Load() <= start || s.maxTs.Load() < ts {
			continue
		}
		if !s.acquire() {
			continue
		}
		off, t, found, err := offsetForTimestampIn(s, ts, start)
		s.release()
		if err != nil {
			return 0, 0, err
		}
		if found {
			return off, t, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: no batch with timestamp >= %d", ErrNotFound, ts)
}

// offsetForTimestampIn looks for ts inside one segment.
func offsetForTimestampIn(s *segment, ts, start int64) (int64, int64, bool, error) {
	limit := s.size.Load()
	// Time index: the largest entry with timestamp < ts gives an offset
	// before which no batch reaches ts.
	pos := int64(0)
	if n, err := s.timeIdx.Size(); err == nil && n >= timeEntrySize {
		lo, hi := int64(0), n/timeEntrySize
		for lo < hi {
			mid := lo + (hi-lo)/2
			t, _, err := readTimeEntry(s.timeIdx, mid)
			if err != nil {
				return 0, 0, false, fmt.Errorf("log: read time index %020d: %w", s.base, err)
			}
			if t < ts {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo > 0 {
			_, rel, err := readTimeEntry(s.timeIdx, lo-1)
			if err != nil {
				return 0, 0, false, fmt.Errorf("log: read time index %020d: %w", s.base, err)
			}
			ix, fi := s.index()
			pos = floorEntry(ix, rel, limit)
			if fi != nil && fi.err != nil {
				return 0, 0, false, fmt.Errorf("log: read index %020d: %w", s.base, fi.err)
			}
		}
	}
	sc := newScanner(s, limit)
	defer sc.done()
	for pos < limit {
		h, err := sc.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if h.last >= start && h.maxTs >= ts {
			t := h.maxTs
			if h.baseTs >= ts {
				t = h.baseTs
			}
			return max(h.base, start), t, true, nil
		}
		pos += h.size
	}
	return 0, 0, false, nil
}
