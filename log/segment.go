package log

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/weir-broker/weir/log/vfs"
)

// File name suffixes, as in Kafka.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	tmpSuffix       = ".tmp"
)

// fileName returns Kafka's name for a file of the segment (or snapshot) at base.
func fileName(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseFileName parses "<20 digits><suffix>" and returns the offset.
func parseFileName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// segment is one log file with its two indexes.
//
// Concurrency: base and the files are immutable after construction. Readers
// use the atomics; everything else is touched only by the partition's writer
// (under Partition.mu). refs counts the segment list's reference plus one per
// live reader; the files are closed when it drops to zero, never before, so
// a file descriptor handed to a reader is never closed (and reused) under it.
type segment struct {
	base    int64
	dir     string
	fs      vfs.FS
	log     vfs.File
	offIdx  vfs.File
	timeIdx vfs.File

	refs     atomic.Int64
	size     atomic.Int64 // bytes published to readers
	next     atomic.Int64 // offset after the last batch
	verified atomic.Int64 // bytes from 0 whose batches passed their CRC check
	goodFrom atomic.Int64 // bytes from here on were written or scanned by this process
	maxTs    atomic.Int64 // largest batch maxTimestamp, or -1
	mem      atomic.Pointer[memIndex]
	fileIdx  atomic.Int64                 // offset index entries in the file (sealed segments)
	removed  atomic.Bool                  // files unlinked; close only
	direct   atomic.Pointer[directHandle] // the log file opened for direct I/O, on first need

	// Writer-only state of the active segment.
	sinceIndex   int64  // bytes appended since the last index entry
	flushedIdx   int64  // memIndex entries already written to the file
	pendingTime  []byte // encoded time index entries not yet written
	timeEntries  int64  // entries in the time index file plus pending
	lastTimeTs   int64  // timestamp of the last time index entry
	maxTsOffset  int64  // base offset of the batch holding maxTs
	firstBatchTs int64  // maxTimestamp of the first batch (segment.ms), or -1
	rollJitter   int64  // segment.jitter.ms drawn for this segment, -1 until drawn
	reservedTo   int64  // disk blocks of the log file reserved up to here (reserve.go)
	reserveOff   bool   // the log file's file system cannot reserve blocks
	reserveStale bool   // opened from disk: blocks an earlier process reserved may lie past the end
}

func (s *segment) logPath() string { return fileName(s.dir, s.base, logSuffix) }

// openSegmentFiles opens (create: creates) the three files of a segment.
func openSegmentFiles(fs vfs.FS, dir string, base int64, create bool) (*segment, error) {
	s := &segment{base: base, dir: dir, fs: fs, lastTimeTs: -1, firstBatchTs: -1, maxTsOffset: -1, rollJitter: -1}
	s.maxTs.Store(-1)
	if !create {
		s.goodFrom.Store(math.MaxInt64) // trusted until scanned
		s.reserveStale = true
	}
	open := fs.OpenReadWrite
	if create {
		open = fs.Create
	}
	var err error
	if s.log, err = open(fileName(dir, base, logSuffix)); err != nil {
		return nil, fmt.Errorf("log: open segment %020d: %w", base, err)
	}
	openIdx := func(suffix string) (vfs.File, error) {
		f, err := open(fileName(dir, base, suffix))
		if !create && errors.Is(err, vfs.ErrNotExist) {
			f, err = fs.Create(fileName(dir, base, suffix))
		}
		return f, err
	}
	if s.offIdx, err = openIdx(indexSuffix); err != nil {
		_ = s.log.Close()
		return nil, fmt.Errorf("log: open index %020d: %w", base, err)
	}
	if s.timeIdx, err = openIdx(timeIndexSuffix); err != nil {
		_ = s.log.Close()
		_ = s.offIdx.Close()
		return nil, fmt.Errorf("log: open time index %020d: %w", base, err)
	}
	s.refs.Store(1)
	return s, nil
}

// acquire takes a reader reference; false if the segment is already closed.
func (s *segment) acquire() bool {
	for {
		r := s.refs.Load()
		if r <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference and closes the files when it was the last.
func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		if d := s.direct.Load(); d != nil && d.f != nil {
			_ = d.f.Close()
		}
		_ = s.log.Close()
		_ = s.offIdx.Close()
		_ = s.timeIdx.Close()
	}
}

// remove unlinks the segment's files. Open handles stay valid until the last
// reference is released.
func (s *segment) remove() error {
	s.removed.Store(true)
	var errs []error
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := s.fs.Remove(fileName(s.dir, s.base, suffix)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("log: remove segment %020d: %w", s.base, err)
	}
	return nil
}

// index returns a reader of the segment's offset index.
func (s *segment) index() (indexReader, *fileIndex) {
	if m := s.mem.Load(); m != nil {
		return m, nil
	}
	fi := &fileIndex{f: s.offIdx, n: s.fileIdx.Load()}
	return fi, fi
}

// segList is an immutable, sorted snapshot of the partition's segments. The
// last one is the active segment.
type segList struct {
	segs []*segment
}

// find returns the index of the last segment whose base is <= offset, or -1.
func (l *segList) find(offset int64) int {
	lo, hi := 0, len(l.segs)
	for lo < hi {
		mid := (lo + hi) / 2
		if l.segs[mid].base <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

func (l *segList) active() *segment { return l.segs[len(l.segs)-1] }
