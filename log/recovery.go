package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// RecoveryReport says what Open found and did. A damaged directory never
// fails Open: the damage is cut away and reported here.
type RecoveryReport struct {
	Clean           bool     // the clean-shutdown marker was found: only the active segment's tail was read
	RecoveryPoint   int64    // the checkpointed recovery point (offsets below were fsynced)
	SegmentsScanned int      // segments whose batches were read and CRC-checked
	BytesScanned    int64    // bytes read by those scans
	BytesTruncated  int64    // bytes cut from torn or corrupt tails, including deleted segments
	SegmentsDeleted int      // whole segments removed because they followed a corrupt batch
	IndexesRebuilt  int      // segments whose offset and time indexes were rebuilt
	ProducerBatches int      // batch headers read to rebuild idempotent producer state
	LastGoodOffset  int64    // log end offset after recovery
	Problems        []string // what was wrong, one line each
}

func (r *RecoveryReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// recover loads the directory into p. Only I/O errors fail it.
func (p *Partition) recover() error {
	r := &p.recovery
	names, err := p.fs.List(p.dir)
	if err != nil {
		return fmt.Errorf("log: list %s: %w", p.dir, err)
	}
	if names, err = p.finishInterruptedClean(names); err != nil {
		return err
	}
	var bases, snapshots []int64
	marker := false
	for _, name := range names {
		switch {
		case name == cleanShutdownMarker:
			marker = true
		case strings.HasSuffix(name, tmpSuffix):
			if err := p.fs.Remove(filepath.Join(p.dir, name)); err != nil {
				return fmt.Errorf("log: remove leftover %s: %w", name, err)
			}
		default:
			if b, ok := parseFileName(name, logSuffix); ok {
				bases = append(bases, b)
			} else if b, ok := parseFileName(name, snapshotSuffix); ok {
				snapshots = append(snapshots, b)
			}
		}
	}
	slices.Sort(bases)
	slices.Sort(snapshots)

	rp, rpOK, err := readOffsetCheckpoint(p.fs, p.dir, recoveryPointCheckpoint)
	if err != nil {
		r.problem("%v", err)
	}
	ls, lsOK, err := readOffsetCheckpoint(p.fs, p.dir, logStartCheckpoint)
	if err != nil {
		r.problem("%v", err)
	}
	if p.epochs, err = loadEpochCache(p.fs, p.dir); err != nil {
		r.problem("%v; epoch cache rebuilt from the scanned batches only", err)
	}
	if marker && !rpOK {
		r.problem("clean-shutdown marker without a recovery point: rescanning")
	}
	r.Clean = marker && rpOK
	r.RecoveryPoint = rp

	var segs []*segment
	defer func() {
		if err != nil {
			for _, s := range segs {
				s.release()
			}
		}
	}()
	if len(bases) == 0 {
		base := int64(0)
		if lsOK {
			base = ls
		}
		s, err := openSegmentFiles(p.fs, p.dir, base, true)
		if err != nil {
			return err
		}
		s.mem.Store(newMemIndex())
		s.next.Store(base)
		segs = append(segs, s)
		if err := p.fs.SyncDir(p.dir); err != nil {
			return fmt.Errorf("log: sync dir: %w", err)
		}
	}
	for _, b := range bases {
		s, err := openSegmentFiles(p.fs, p.dir, b, false)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		size, err := s.log.Size()
		if err != nil {
			return fmt.Errorf("log: size of %s: %w", s.logPath(), err)
		}
		s.size.Store(size)
	}

	// Segments from firstScan on are rescanned; before it they are trusted.
	firstScan := len(segs)
	if !r.Clean && len(bases) > 0 {
		firstScan = 0
		for i, s := range segs {
			if s.base <= rp {
				firstScan = i
			}
		}
	}
	scannedFrom := int64(math.MaxInt64)
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		last := i == len(segs)-1
		var bad int64 = -1
		switch {
		case i >= firstScan:
			scannedFrom = min(scannedFrom, s.base)
			bad, err = p.scanSegment(s, last, true)
		case last:
			bad, err = p.openActiveTail(s)
		default:
			s.next.Store(segs[i+1].base)
			if !p.sealedIndexOK(s) {
				r.problem("segment %020d: index missing or damaged: rebuilt", s.base)
				scannedFrom = min(scannedFrom, s.base)
				bad, err = p.scanSegment(s, false, true)
			}
		}
		if err != nil {
			return err
		}
		if bad < 0 && i >= firstScan && !last && s.next.Load() < segs[i+1].base {
			// The segment lost its tail whole (unsynced bytes gone at a
			// batch boundary): what follows would leave a hole.
			r.problem("segment %020d ends at offset %d, before the next segment's base %d", s.base, s.next.Load(), segs[i+1].base)
			bad = s.size.Load()
		}
		if bad >= 0 {
			// Cut the segment at the first bad batch and drop everything after it.
			r.BytesTruncated += s.size.Load() - bad
			if err := p.truncateSegmentFile(s, bad); err != nil {
				return err
			}
			for _, d := range segs[i+1:] {
				r.BytesTruncated += d.size.Load()
				r.SegmentsDeleted++
				r.problem("segment %020d deleted: it follows a damaged batch", d.base)
				err := d.remove()
				d.release()
				if err != nil {
					return err
				}
			}
			segs = segs[:i+1]
			if err := p.fs.SyncDir(p.dir); err != nil {
				return fmt.Errorf("log: sync dir: %w", err)
			}
			if !last {
				// s becomes the active segment.
				if _, err := p.scanSegment(s, true, false); err != nil {
					return err
				}
			}
		}
	}
	act := segs[len(segs)-1]
	p.segs.Store(&segList{segs: segs})
	leo := act.next.Load()
	p.endOffset.Store(leo)
	r.LastGoodOffset = leo

	start := segs[0].base
	if lsOK && ls > start {
		start = ls
	}
	if start > leo {
		r.problem("log start offset %d past the recovered log end offset %d: clamped", start, leo)
		start = leo
	}
	p.startOffset.Store(start)
	if lsOK && start != ls {
		if err := p.writeOffsetCheckpoint(logStartCheckpoint, start); err != nil {
			return err
		}
	}
	changed := p.epochs.truncateFrom(leo)
	changed = p.epochs.truncateBefore(start) || changed
	if scannedFrom != math.MaxInt64 || changed {
		if err := p.epochs.save(p); err != nil {
			return err
		}
	}
	if r.Clean {
		rp = leo
	}
	p.recoveryPoint = min(rp, leo)
	p.sync.durable = p.recoveryPoint
	if err := p.rebuildProducers(snapshots, leo); err != nil {
		return err
	}
	if err := p.rebuildTxns(r.Clean); err != nil {
		return err
	}
	if marker {
		if err := p.fs.Remove(filepath.Join(p.dir, cleanShutdownMarker)); err != nil {
			return fmt.Errorf("log: remove clean-shutdown marker: %w", err)
		}
		if err := p.fs.SyncDir(p.dir); err != nil {
			return fmt.Errorf("log: sync dir: %w", err)
		}
	}
	if len(r.Problems) > 0 || !r.Clean && len(bases) > 0 {
		p.logger.Warn("log: recovered partition", "clean", r.Clean, "scanned", r.SegmentsScanned,
			"truncated_bytes", r.BytesTruncated, "deleted_segments", r.SegmentsDeleted,
			"log_end_offset", leo, "problems", r.Problems)
	}
	return nil
}

// truncateSegmentFile cuts a segment's log file at pos, durably: torn bytes
// that came back after another crash would mix with new appends.
func (p *Partition) truncateSegmentFile(s *segment, pos int64) error {
	if err := s.log.Truncate(pos); err != nil {
		return fmt.Errorf("log: truncate %s: %w", s.logPath(), err)
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("log: fsync %s after truncation: %w", s.logPath(), err)
	}
	s.size.Store(pos)
	s.reservedTo = min(s.reservedTo, pos) // the truncation gave back the blocks after pos
	return nil
}

// sealedIndexOK checks a trusted sealed segment's index files cheaply: sizes
// are whole entries and the last entries point inside the segment. It also
// loads the segment's largest timestamp from the time index.
func (p *Partition) sealedIndexOK(s *segment) bool {
	size := s.size.Load()
	n, err := s.offIdx.Size()
	if err != nil || n%offsetEntrySize != 0 || (n == 0) != (size == 0) {
		return false
	}
	tn, err := s.timeIdx.Size()
	if err != nil || tn%timeEntrySize != 0 {
		return false
	}
	if n > 0 {
		fi := &fileIndex{f: s.offIdx, n: n / offsetEntrySize}
		rel, pos := unpackEntry(fi.at(fi.n - 1))
		first, _ := unpackEntry(fi.at(0))
		if fi.err != nil || int64(pos) >= size || int64(rel) >= s.next.Load()-s.base || first > rel {
			return false
		}
	}
	s.fileIdx.Store(n / offsetEntrySize)
	if tn > 0 {
		ts, rel, err := readTimeEntry(s.timeIdx, tn/timeEntrySize-1)
		if err != nil || int64(rel) >= s.next.Load()-s.base {
			return false
		}
		s.maxTs.Store(ts)
	}
	return true
}

// openActiveTail loads the active segment after a clean shutdown: its index
// into memory, then reads (and CRC-checks) the batches after the last index
// entry to find the log end offset. It returns the position of a bad batch,
// or -1.
func (p *Partition) openActiveTail(s *segment) (int64, error) {
	size := s.size.Load()
	m, err := loadOffsetIndex(s.offIdx, size)
	tn, terr := s.timeIdx.Size()
	if err != nil || terr != nil || tn%timeEntrySize != 0 || (m.len() == 0) != (size == 0) {
		p.recovery.problem("segment %020d: index missing or damaged: rebuilt", s.base)
		return p.scanSegment(s, true, true)
	}
	from := int64(0)
	if n := m.len(); n > 0 {
		_, pos := unpackEntry(m.at(n - 1))
		from = int64(pos)
	}
	s.timeEntries = tn / timeEntrySize
	if s.timeEntries > 0 {
		ts, rel, err := readTimeEntry(s.timeIdx, s.timeEntries-1)
		if err != nil {
			return -1, fmt.Errorf("log: read time index of %020d: %w", s.base, err)
		}
		s.lastTimeTs, s.maxTsOffset = ts, s.base+int64(rel)
		s.maxTs.Store(ts)
	}
	s.flushedIdx = m.len()
	s.fileIdx.Store(m.len())
	s.mem.Store(m)
	if h, ok := readFirstHeader(s); ok && size > 0 {
		s.firstBatchTs = h.maxTs // segment.ms counts from the first batch
	}
	return p.scan(s, from, false)
}

// scanSegment reads every batch of s from the start, CRC-checks it and
// rebuilds both indexes. active keeps the offset index in memory for
// appends. It returns the position of the first bad batch, or -1.
func (p *Partition) scanSegment(s *segment, active, count bool) (int64, error) {
	if count {
		p.recovery.IndexesRebuilt++
	}
	for _, f := range []vfs.File{s.offIdx, s.timeIdx} {
		if err := f.Truncate(0); err != nil {
			return -1, fmt.Errorf("log: reset index %s: %w", f.Name(), err)
		}
	}
	s.mem.Store(newMemIndex())
	s.flushedIdx, s.timeEntries, s.lastTimeTs, s.maxTsOffset = 0, 0, -1, -1
	s.pendingTime = nil
	s.maxTs.Store(-1)
	s.fileIdx.Store(0)
	bad, err := p.scan(s, 0, count)
	if err != nil {
		return -1, err
	}
	if err := p.flushIndexes(s); err != nil {
		return -1, err
	}
	if !active {
		s.fileIdx.Store(s.flushedIdx)
		s.mem.Store(nil)
		s.pendingTime = nil
	}
	return bad, nil
}

// scan reads batches of s from pos (a batch boundary with index state up to
// it already loaded), checks each (CRC, offsets increasing, relative offsets
// in range) and replays the writer's indexing. It sets next, size, verified
// and maxTs, feeds epochs, and returns the position of the first bad batch
// or -1.
func (p *Partition) scan(s *segment, pos int64, count bool) (int64, error) {
	size := s.size.Load()
	m := s.mem.Load()
	interval := p.cfg.IndexIntervalBytes
	// Offsets must increase from batch to batch; a tail scan starts at an
	// index entry, whose batch only has to lie inside the segment.
	next := s.base
	s.sinceIndex = 0
	if count {
		p.recovery.SegmentsScanned++
	}
	buf := make([]byte, 0, 1<<20)
	bufPos := int64(0)
	maxTs := s.maxTs.Load()
	bad := int64(-1)
	startPos := pos
	for pos < size {
		// Make sure the whole batch at pos is in buf.
		need := int64(batch.LogOverhead)
		for {
			if pos+need > size {
				break
			}
			if pos < bufPos || pos+need > bufPos+int64(len(buf)) {
				want := max(need, min(int64(cap(buf)), size-pos))
				if int64(cap(buf)) < want {
					buf = make([]byte, 0, want)
				}
				buf = buf[:want]
				n, err := s.log.ReadAt(buf, pos)
				if int64(n) < want && !errors.Is(err, io.EOF) {
					return -1, fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
				}
				buf, bufPos = buf[:n], pos
			}
			if need > batch.LogOverhead {
				break
			}
			n, err := batch.Size(buf[pos-bufPos:])
			if err != nil {
				break
			}
			need = int64(n)
		}
		if pos+need > size || pos+need > bufPos+int64(len(buf)) || need == batch.LogOverhead {
			p.recovery.problem("segment %020d: torn or damaged batch at position %d", s.base, pos)
			bad = pos
			break
		}
		bt, err := batch.Parse(buf[pos-bufPos : pos-bufPos+need])
		if err == nil && (bt.BaseOffset() < next || bt.LastOffset()-s.base > math.MaxInt32 || bt.BaseOffset() < s.base) {
			err = fmt.Errorf("offset %d out of order (expected >= %d)", bt.BaseOffset(), next)
		}
		if err != nil {
			p.recovery.problem("segment %020d: bad batch at position %d: %v", s.base, pos, err)
			bad = pos
			break
		}
		if pos == 0 {
			s.firstBatchTs = bt.MaxTimestamp()
		}
		if ts := bt.MaxTimestamp(); ts > maxTs {
			maxTs, s.maxTsOffset = ts, bt.BaseOffset()
		}
		rel := uint32(bt.LastOffset() - s.base)
		if s.sinceIndex >= interval || pos == 0 {
			if n := m.len(); n == 0 || func() bool { r, _ := unpackEntry(m.at(n - 1)); return r < rel }() {
				m.add(packEntry(rel, uint32(pos)))
			}
			if maxTs > s.lastTimeTs {
				s.pendingTime = appendTimeEntry(s.pendingTime, maxTs, uint32(s.maxTsOffset-s.base))
				s.timeEntries++
				s.lastTimeTs = maxTs
			}
			s.sinceIndex = 0
		}
		s.sinceIndex += need
		p.epochs.assign(bt.PartitionLeaderEpoch(), bt.BaseOffset(), nil)
		next = bt.NextOffset()
		pos += need
	}
	if count {
		p.recovery.BytesScanned += pos - startPos
	}
	if bad < 0 {
		bad = -1
	}
	if pos == 0 && startPos == 0 {
		next = s.base
	}
	// A segment that loses its first batches keeps its base as next offset.
	if next < s.base {
		next = s.base
	}
	s.next.Store(next)
	s.maxTs.Store(maxTs)
	end := pos
	if bad >= 0 {
		end = bad
	}
	if startPos == 0 {
		s.verified.Store(end)
	}
	s.goodFrom.Store(min(startPos, s.goodFrom.Load()))
	return bad, nil
}

// readFirstHeader reads the batch header at position 0 of s.
func readFirstHeader(s *segment) (batchHeader, bool) {
	var h [batch.HeaderSize]byte
	if n, _ := s.log.ReadAt(h[:], 0); n < len(h) {
		return batchHeader{}, false
	}
	return parseHeader(h[:])
}

// rebuildProducers loads the newest producer snapshot at or below leo and
// replays batch headers after it.
func (p *Partition) rebuildProducers(snapshots []int64, leo int64) error {
	p.producers = newProducerLedger()
	from := p.segs.Load().segs[0].base
	for i := len(snapshots) - 1; i >= 0; i-- {
		off := snapshots[i]
		name := fileName(p.dir, off, snapshotSuffix)
		if off > leo {
			if err := p.fs.Remove(name); err != nil && !errors.Is(err, vfs.ErrNotExist) {
				return fmt.Errorf("log: remove stale snapshot: %w", err)
			}
			continue
		}
		data, err := readFile(p.fs, name)
		if err != nil {
			p.recovery.problem("producer snapshot %020d unreadable: %v", off, err)
			continue
		}
		l, err := unmarshalProducerLedger(data)
		if err != nil {
			p.recovery.problem("producer snapshot %020d damaged: %v", off, err)
			continue
		}
		p.producers, from = l, off
		break
	}
	if from >= leo {
		return nil
	}
	return p.replayProducers(from, leo)
}

// replayProducers feeds the headers of batches in [from, to) to the ledger.
func (p *Partition) replayProducers(from, to int64) error {
	l := p.segs.Load()
	hdr := make([]byte, batch.HeaderSize)
	for i := max(l.find(from), 0); i < len(l.segs); i++ {
		s := l.segs[i]
		limit := s.size.Load()
		for pos := int64(0); pos < limit; {
			if n, err := s.log.ReadAt(hdr, pos); n < len(hdr) {
				return fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
			}
			h, ok := parseHeader(hdr)
			if !ok {
				return &CorruptError{Path: s.logPath(), Pos: pos, Offset: -1, Reason: "invalid batch header"}
			}
			pos += h.size
			if h.last < from {
				continue
			}
			if h.base >= to {
				return nil
			}
			bt := batch.Batch(hdr)
			if bt.ProducerID() >= 0 {
				p.producers.record(bt)
				p.recovery.ProducerBatches++
			}
		}
	}
	return nil
}
