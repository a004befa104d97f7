package log

import "github.com/weir-broker/weir/log/vfs"

// Disk blocks of the active segment are reserved a little ahead of its
// writes (vfs.Preallocator: fallocate, keeping the file's size). Without
// it ext4 does its delayed-allocation bookkeeping (block reservation, quota,
// extent-status entries) for every page an append dirties, and allocates
// the blocks at writeback: a fifth of the broker's CPU while producing
// 1 KiB records in docs/benchmarks.md. A reserved range is written in place,
// and what a segment did not use is given back when it is sealed or the
// partition is closed (a truncation to the size the file already has).
// After a crash the reservation past the end stays until the segment is
// sealed, the partition closed or the segment deleted; it holds no data and
// is never read.
//
// Only bulk appends reserve, and ahead by a few of themselves: the disk space
// held past the data is at most reserveAhead per partition, and nothing for
// partitions that take small appends (a broker with thousands of quiet
// partitions does not hold gigabytes of reservations; such appends dirty
// few pages, so the bookkeeping saved would be small).

// reserveAhead is the most an append reserves past itself: a few appends of
// the largest batches, so that reserving costs one system call per few MiB
// written.
const reserveAhead = 4 << 20

// minReserveAppend is the smallest append that reserves; it reserves four
// times its size ahead, up to reserveAhead.
const minReserveAppend = 64 << 10

// minReserveSegment is the smallest segment.bytes for which blocks are
// reserved at all: smaller segments roll before a reservation pays.
const minReserveSegment = 1 << 20

// reserve makes sure the blocks of s's log file for an append of n bytes
// ending at end are reserved, reserving up to 4n (at most reserveAhead)
// more, never past segment.bytes unless end already is. Appends under
// minReserveAppend reserve nothing. A file system that cannot reserve (or
// has no room to: the write then reports it) is left to allocate as it
// writes. Writer only.
func (p *Partition) reserve(s *segment, end, n int64) {
	if end <= s.reservedTo || n < minReserveAppend || s.reserveOff || p.cfg.SegmentBytes < minReserveSegment {
		return
	}
	pa, ok := s.log.(vfs.Preallocator)
	if !ok {
		s.reserveOff = true
		return
	}
	from := max(s.reservedTo, s.size.Load())
	to := max(end, min(end+min(4*n, reserveAhead), p.cfg.SegmentBytes))
	if err := pa.Preallocate(from, to-from); err != nil {
		s.reserveOff = true
		return
	}
	s.reservedTo = to
}

// releaseReserve gives back the blocks reserved past the end of s's log
// file. The segment is sealed or its partition closing: nothing will be
// appended. A failure costs only disk space until the segment is deleted.
func releaseReserve(s *segment) {
	size := s.size.Load()
	if s.reservedTo <= size && !s.reserveStale {
		return
	}
	_ = s.log.Truncate(size) // to the size it has: frees only the blocks past it
	s.reservedTo, s.reserveStale = size, false
}
