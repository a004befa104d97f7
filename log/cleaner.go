package log

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// The cleaner's I/O. One pass (Compact) works like Kafka's log cleaner:
//
//  1. Under the writer lock, take references to the sealed segments and copy
//     the config; then let go of the lock. Appends go on meanwhile: the
//     cleaner never touches the active segment.
//  2. Plan (planCompaction, which stops before the first unstable offset)
//     and read the records of the dirty segments (those after the cleaner
//     checkpoint), except aborted transactions', into the key → newest offset map,
//     up to cleanMaxKeys keys; the pass cleans up to the last mapped one.
//  3. For each chosen segment B, write what is kept to B.log.cleaned with
//     new B.index.cleaned and B.timeindex.cleaned, and fsync all three.
//  4. Under the writer lock, if the segment is still in the log unchanged
//     (retention or truncation did not get to it first), commit by renaming
//     B.log.cleaned to B.log.swap and syncing the directory; then rename the
//     indexes over B.index and B.timeindex and B.log.swap over B.log, sync,
//     and swap the new segment into the segment list. Readers holding the
//     old segment keep its (now unlinked) files until they release them.
//
// On open, finishInterruptedClean completes a swap whose B.log.swap exists
// (the commit happened) and deletes *.cleaned files of one that did not.
// So a crash at any step leaves either the old segment or the new one.

// CompactResult reports one compaction pass.
type CompactResult struct {
	SegmentsCleaned   int   // segments rewritten
	BytesBefore       int64 // their size before
	BytesAfter        int64 // and after
	RecordsRemoved    int64 // records dropped (superseded values, expired tombstones, aborted transactions)
	TombstonesRemoved int64 // of which tombstones
	Undecodable       int   // batches whose records did not decode: kept as they were
	CleanedTo         int64 // offsets below are compacted (the cleaner checkpoint)
}

const (
	cleanerCheckpoint = "cleaner-offset-checkpoint"
	cleanedSuffix     = ".cleaned"
	swapSuffix        = ".swap"
	// cleanRecordLimit bounds the decompressed size of one batch the
	// cleaner decodes; a larger batch is kept as it is.
	cleanRecordLimit = 256 << 20
)

// cleanMaxKeys bounds the keys one pass maps (about 100 bytes each with
// short keys); a variable so tests can make passes small.
var cleanMaxKeys = 1 << 20

// errCleanRaced: the segment changed under the cleaner (retention, a
// truncation or close got there first); the pass stops, nothing is lost.
var errCleanRaced = errors.New("log: segment changed during compaction")

// Compact runs one compaction pass if cleanup.policy includes compact and
// the plan finds enough to do. It holds the writer lock only to pick the
// segments and to swap each rewritten one in. Compact calls on the same
// partition are serialised; callers run it from a background goroutine.
func (p *Partition) Compact() (CompactResult, error) {
	p.cleanMu.Lock()
	defer p.cleanMu.Unlock()

	p.mu.Lock()
	if err := p.checkWritable(); err != nil {
		p.mu.Unlock()
		return CompactResult{}, err
	}
	cfg := p.cfg
	if !cfg.Compact() {
		p.mu.Unlock()
		return CompactResult{}, nil
	}
	// Taken with the segments, under the writer lock: a transaction opened
	// later starts past every sealed segment, and one that aborts later
	// is still open here, so firstUnstable keeps the pass below it.
	firstUnstable := p.txns.firstUnstable()
	aborted := newAbortedSet(p.txns.abortedIn(0, math.MaxInt64))
	l := p.segs.Load()
	sealed := make([]*segment, 0, len(l.segs)-1)
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.acquire() {
			sealed = append(sealed, s)
		}
	}
	p.mu.Unlock()
	defer func() {
		for _, s := range sealed {
			s.release()
		}
	}()

	cleanedTo, ok, err := readOffsetCheckpoint(p.fs, p.dir, cleanerCheckpoint)
	if err != nil || !ok {
		cleanedTo = -1
	}
	res := CompactResult{CleanedTo: max(cleanedTo, 0)}
	nowMs := p.now().UnixMilli()
	cands := make([]cleanCandidate, len(sealed))
	for i, s := range sealed {
		cands[i] = cleanCandidate{base: s.base, next: s.next.Load(), size: s.size.Load(), maxTs: s.maxTs.Load()}
	}
	if len(cands) > 0 && cleanedTo > cands[len(cands)-1].next {
		cleanedTo = -1 // the log was truncated below the checkpoint: start over
	}
	n := planCompaction(cands, cleanedTo, cfg, nowMs, firstUnstable)
	if n == 0 {
		return res, nil
	}

	// Map the dirty segments only (as Kafka does): the clean ones below
	// were deduplicated by earlier passes, so a record there goes only if
	// the dirty part has a newer one. The map stops growing after the
	// segment that takes it past cleanMaxKeys; the pass then cleans up to
	// there and the next pass goes on.
	om := newOffsetMap()
	end := 0
	for i := range n {
		end = i + 1
		if cands[i].next <= cleanedTo {
			continue
		}
		if err := mapSegment(sealed[i], cands[i].size, om, aborted); err != nil {
			return res, err
		}
		if om.len() >= cleanMaxKeys {
			break
		}
	}
	chosen := sealed[:end]
	horizon := nowMs - cfg.DeleteRetentionMs
	for i, s := range chosen {
		st, newSize, err := p.writeCleaned(s, cands[i].size, om, aborted, horizon, cfg.IndexIntervalBytes)
		if err != nil {
			p.removeCleaned(s.base)
			return res, err
		}
		if committed, err := p.swapCleaned(s, cands[i].size, newSize); err != nil {
			if !committed {
				p.removeCleaned(s.base) // after the commit, the next open finishes the swap
			}
			if errors.Is(err, errCleanRaced) {
				return res, nil
			}
			return res, err
		}
		res.SegmentsCleaned++
		res.BytesBefore += cands[i].size
		res.BytesAfter += newSize
		res.RecordsRemoved += st.records
		res.TombstonesRemoved += st.tombstones
		res.Undecodable += st.undecodable
	}
	res.CleanedTo = cands[end-1].next
	if err := p.writeOffsetCheckpoint(cleanerCheckpoint, res.CleanedTo); err != nil {
		return res, err
	}
	p.logger.Info("log: compacted", "segments", res.SegmentsCleaned, "bytes_before", res.BytesBefore,
		"bytes_after", res.BytesAfter, "records_removed", res.RecordsRemoved, "cleaned_to", res.CleanedTo)
	return res, nil
}

// mapSegment adds every keyed record of the first size bytes of s to om,
// except those of aborted transactions. Batches whose records do not decode are skipped: they will be kept whole,
// and whatever they hold is then not superseded by anything the map lacks.
func mapSegment(s *segment, size int64, om *offsetMap, aborted abortedSet) error {
	var it batch.Iter
	return scanBatches(s.log, s.logPath(), size, func(pos int64, b batch.Batch, perr error) error {
		if perr != nil {
			return fmt.Errorf("log: compact: %s at %d: %w", s.logPath(), pos, perr)
		}
		if b.IsControl() || aborted.contains(b) {
			return nil
		}
		if err := it.Reset(b, cleanRecordLimit); err != nil {
			return nil
		}
		for it.Next() {
			if r := it.Record(); r.Key != nil {
				om.add(r.Key, r.Offset)
			}
		}
		return nil
	})
}

// cleanStats is what writing one cleaned segment dropped.
type cleanStats struct {
	filterStats
	undecodable int
}

func cleanedName(dir string, base int64, suffix string) string {
	return fileName(dir, base, suffix) + cleanedSuffix
}

// writeCleaned writes the kept batches of s (its first size bytes) and their
// indexes to the .cleaned files, fsyncs them, and returns the new size.
func (p *Partition) writeCleaned(s *segment, size int64, om *offsetMap, aborted abortedSet, horizon, interval int64) (cleanStats, int64, error) {
	var st cleanStats
	var files []vfs.File
	defer func() {
		for _, f := range files {
			_ = f.Close()
		}
	}()
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		f, err := p.fs.Create(cleanedName(p.dir, s.base, suffix))
		if err != nil {
			return st, 0, fmt.Errorf("log: compact: %w", err)
		}
		files = append(files, f)
	}
	out, idx, tidx := files[0], files[1], files[2]

	var buf, idxBuf, timeBuf []byte
	var it batch.Iter
	var pos, sinceIndex int64
	lastRel, lastTimeTs, maxTs, maxTsOffset := int64(-1), int64(-1), int64(-1), int64(-1)
	err := scanBatches(s.log, s.logPath(), size, func(at int64, b batch.Batch, perr error) error {
		if perr != nil {
			return perr
		}
		var fs filterStats
		var err error
		last := at+int64(len(b)) == size
		buf, fs, err = filterBatch(buf[:0], b, last, om, aborted, horizon, cleanRecordLimit, &it)
		if err != nil {
			st.undecodable++
			buf = append(buf[:0], b...)
		}
		st.records += fs.records
		st.tombstones += fs.tombstones
		if len(buf) == 0 {
			return nil
		}
		kb := batch.Batch(buf)
		if ts := kb.MaxTimestamp(); ts > maxTs {
			maxTs, maxTsOffset = ts, kb.BaseOffset()
		}
		// Index as the writer does: the first batch and one every
		// index.interval.bytes, by last offset.
		if sinceIndex >= interval || pos == 0 {
			if rel := kb.LastOffset() - s.base; rel > lastRel {
				idxBuf = appendOffsetEntry(idxBuf, packEntry(uint32(rel), uint32(pos)))
				lastRel = rel
			}
			if maxTs > lastTimeTs {
				timeBuf = appendTimeEntry(timeBuf, maxTs, uint32(maxTsOffset-s.base))
				lastTimeTs = maxTs
			}
			sinceIndex = 0
		}
		if _, err := out.WriteAt(buf, pos); err != nil {
			return fmt.Errorf("log: compact: write %s: %w", out.Name(), err)
		}
		pos += int64(len(buf))
		sinceIndex += int64(len(buf))
		return nil
	})
	if err != nil {
		return st, 0, fmt.Errorf("log: compact %020d: %w", s.base, err)
	}
	if maxTs > lastTimeTs && maxTsOffset >= s.base {
		timeBuf = appendTimeEntry(timeBuf, maxTs, uint32(maxTsOffset-s.base))
	}
	if _, err := idx.WriteAt(idxBuf, 0); err != nil {
		return st, 0, fmt.Errorf("log: compact: write %s: %w", idx.Name(), err)
	}
	if _, err := tidx.WriteAt(timeBuf, 0); err != nil {
		return st, 0, fmt.Errorf("log: compact: write %s: %w", tidx.Name(), err)
	}
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return st, 0, fmt.Errorf("log: compact: fsync %s: %w", f.Name(), err)
		}
	}
	return st, pos, nil
}

// removeCleaned deletes the .cleaned files of an abandoned clean of base.
func (p *Partition) removeCleaned(base int64) {
	for _, suffix := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := p.fs.Remove(cleanedName(p.dir, base, suffix)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
			p.logger.Warn("log: compact: remove leftover", "err", err)
		}
	}
}

// swapCleaned commits the cleaned files of s and puts the new segment in
// its place in the segment list. oldSize is the size the clean read.
// committed reports whether the commit point was passed (then the .cleaned
// files must stay for the next open to finish the swap).
func (p *Partition) swapCleaned(s *segment, oldSize, newSize int64) (committed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkWritable(); err != nil {
		return false, err
	}
	l := p.segs.Load()
	i := -1
	for j, t := range l.segs[:len(l.segs)-1] {
		if t == s {
			i = j
		}
	}
	if i < 0 || s.size.Load() != oldSize {
		return false, errCleanRaced
	}
	base := s.base
	swap := fileName(p.dir, base, logSuffix) + swapSuffix
	if err := p.fs.Rename(cleanedName(p.dir, base, logSuffix), swap); err != nil {
		return false, fmt.Errorf("log: compact: %w", err)
	}
	// From the directory sync on the clean is committed: a failure past
	// this point can only be finished by the next open.
	if err := p.fs.SyncDir(p.dir); err != nil {
		return true, p.fail(fmt.Errorf("log: compact: commit %020d: sync dir: %w", base, err))
	}
	for _, r := range [][2]string{
		{cleanedName(p.dir, base, indexSuffix), fileName(p.dir, base, indexSuffix)},
		{cleanedName(p.dir, base, timeIndexSuffix), fileName(p.dir, base, timeIndexSuffix)},
		{swap, fileName(p.dir, base, logSuffix)},
	} {
		if err := p.fs.Rename(r[0], r[1]); err != nil {
			return true, p.fail(fmt.Errorf("log: compact: swap %020d: %w", base, err))
		}
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return true, p.fail(fmt.Errorf("log: compact: swap %020d: sync dir: %w", base, err))
	}
	ns, err := openSegmentFiles(p.fs, p.dir, base, false)
	if err != nil {
		return true, p.fail(fmt.Errorf("log: compact: reopen %020d: %w", base, err))
	}
	ns.size.Store(newSize)
	ns.next.Store(s.next.Load())
	ns.verified.Store(newSize)
	if !p.sealedIndexOK(ns) {
		if _, err := p.scanSegment(ns, false, false); err != nil {
			ns.release()
			return true, p.fail(fmt.Errorf("log: compact: index %020d: %w", base, err))
		}
	}
	segs := append([]*segment(nil), l.segs...)
	segs[i] = ns
	p.segs.Store(&segList{segs: segs})
	s.release() // the list's reference; readers keep theirs
	return true, nil
}

// finishInterruptedClean runs at open, before the directory is loaded: a
// clean whose B.log.swap exists was committed and is completed; the
// .cleaned files of one that was not are deleted. It returns the directory
// listing as it is afterwards.
func (p *Partition) finishInterruptedClean(names []string) ([]string, error) {
	changed := false
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		stem, ok := strings.CutSuffix(n, logSuffix+swapSuffix)
		if !ok {
			continue
		}
		base, ok := parseFileName(stem+logSuffix, logSuffix)
		if !ok {
			continue
		}
		for _, suffix := range []string{indexSuffix, timeIndexSuffix} {
			from := fileName(p.dir, base, suffix) + cleanedSuffix
			if have[filepath.Base(from)] {
				if err := p.fs.Rename(from, fileName(p.dir, base, suffix)); err != nil {
					return nil, fmt.Errorf("log: finish compaction of %020d: %w", base, err)
				}
			}
		}
		if err := p.fs.Rename(filepath.Join(p.dir, n), fileName(p.dir, base, logSuffix)); err != nil {
			return nil, fmt.Errorf("log: finish compaction of %020d: %w", base, err)
		}
		p.recovery.problem("segment %020d: completed a compaction interrupted after its commit", base)
		changed = true
	}
	if changed {
		// The renames must be durable before any .cleaned file goes.
		if err := p.fs.SyncDir(p.dir); err != nil {
			return nil, fmt.Errorf("log: sync dir: %w", err)
		}
		var err error
		if names, err = p.fs.List(p.dir); err != nil {
			return nil, fmt.Errorf("log: list %s: %w", p.dir, err)
		}
	}
	removed := false
	for _, n := range names {
		if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) {
			if err := p.fs.Remove(filepath.Join(p.dir, n)); err != nil && !errors.Is(err, vfs.ErrNotExist) {
				return nil, fmt.Errorf("log: remove leftover %s: %w", n, err)
			}
			removed = true
		}
	}
	if !removed {
		return names, nil
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return nil, fmt.Errorf("log: sync dir: %w", err)
	}
	out, err := p.fs.List(p.dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", p.dir, err)
	}
	return out, nil
}
