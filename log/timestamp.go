package log

import (
	"errors"
	"fmt"

	"github.com/weir-broker/weir/log/batch"
)

// maxTimestampDecode bounds the decompressed size of a batch decoded to
// answer OffsetForTimestamp.
const maxTimestampDecode = 64 << 20

// OffsetForTimestamp answers ListOffsets by timestamp: the offset and
// timestamp of the first record at or after the log start offset whose
// timestamp is >= ts (with LogAppendTime, every record of a batch has the
// batch's time). The segment and the batch are found through the time and
// offset indexes; only that batch is decoded. ErrNotFound if no record has a
// timestamp >= ts. Lock-free.
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
	fromIndex := pos > 0
	for pos < limit {
		h, err := sc.header(pos)
		if err != nil && fromIndex && errors.Is(err, ErrCorrupt) {
			pos, fromIndex = 0, false // a damaged index: scan the segment
			continue
		}
		if err != nil {
			return 0, 0, false, err
		}
		if h.last >= start && h.maxTs >= ts {
			off, t, ok, err := recordForTimestamp(s, pos, h, ts, start)
			if err != nil || ok {
				return off, t, ok, err
			}
		}
		pos += h.size
	}
	return 0, 0, false, nil
}

// recordForTimestamp decodes the batch at pos (header h) and returns its
// first record at or after start with a timestamp >= ts. ok is false when no
// record qualifies. A batch that fails its CRC is an error, never an answer;
// one whose records do not decode is answered at batch level.
func recordForTimestamp(s *segment, pos int64, h batchHeader, ts, start int64) (int64, int64, bool, error) {
	buf := make([]byte, h.size)
	if n, err := s.log.ReadAt(buf, pos); int64(n) < h.size {
		return 0, 0, false, fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
	}
	bt, err := batch.Parse(buf)
	if err != nil {
		return 0, 0, false, &CorruptError{Path: s.logPath(), Pos: pos, Offset: h.base, Reason: err.Error()}
	}
	if bt.IsLogAppendTime() {
		return max(h.base, start), h.maxTs, true, nil
	}
	it, err := bt.Records(maxTimestampDecode)
	if err != nil {
		return max(h.base, start), h.maxTs, true, nil
	}
	for it.Next() {
		r := it.Record()
		if r.Offset >= start && r.Timestamp >= ts {
			return r.Offset, r.Timestamp, true, nil
		}
	}
	if it.Err() != nil {
		return max(h.base, start), h.maxTs, true, nil
	}
	return 0, 0, false, nil
}
