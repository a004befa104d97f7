package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// Offline verification of a partition directory. Verify reads the segment
// files directly, in Kafka's fixed layout, without opening a Partition and
// without trusting any checkpoint, so it also checks the code that wrote
// them. It never modifies anything.

// VerifyOptions selects how deep Verify looks.
type VerifyOptions struct {
	// Records also decompresses every batch and decodes its records.
	Records bool
	// MaxRecordBytes caps the decompressed size of one batch when Records
	// is set (a larger batch is reported, not decoded). 0 means 64 MiB.
	MaxRecordBytes int
}

// SegmentReport summarises one segment as found on disk.
type SegmentReport struct {
	Base             int64 `json:"base"`
	LogBytes         int64 `json:"logBytes"`
	Batches          int   `json:"batches"`
	Records          int64 `json:"records"` // sum of the batches' recordCount fields
	FirstOffset      int64 `json:"firstOffset"`
	LastOffset       int64 `json:"lastOffset"` // -1 when the segment holds no batch
	MaxTimestamp     int64 `json:"maxTimestamp"`
	IndexEntries     int   `json:"indexEntries"`
	TimeIndexEntries int   `json:"timeIndexEntries"`
}

// VerifyReport is what Verify found in one partition directory.
type VerifyReport struct {
	Dir      string          `json:"dir"`
	Segments []SegmentReport `json:"segments"`
	// Problems lists every damaged spot: file, byte position, offset (-1
	// when unknown) and the check that failed.
	Problems []*CorruptError `json:"problems"`
	// Notes lists things that are not damage but worth knowing, such as
	// leftovers of an interrupted compaction that the next open cleans up.
	Notes []string `json:"notes,omitempty"`
}

// Clean reports whether no problem was found.
func (r *VerifyReport) Clean() bool { return len(r.Problems) == 0 }

func (r *VerifyReport) problem(path string, pos, offset int64, format string, args ...any) {
	r.Problems = append(r.Problems, &CorruptError{Path: path, Pos: pos, Offset: offset, Reason: fmt.Sprintf(format, args...)})
}

// The on-disk layout is Kafka's and fixed, so Verify spells it out itself
// rather than sharing the writer's helpers: a bug there cannot hide here.
const (
	verifyIndexEntry = 8  // .index: [4 relative offset][4 position]
	verifyTimeEntry  = 12 // .timeindex: [8 timestamp][4 relative offset]
)

// verifyParseName parses "<20 digits><suffix>" into an offset.
func verifyParseName(name, suffix string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, suffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	return n, err == nil && n >= 0
}

// maxVerifyIndexBytes caps how much of an index file Verify reads into
// memory: segment.index.bytes cannot exceed MaxInt32.
const maxVerifyIndexBytes = 1<<31 - 1

// defaultVerifyRecordBytes bounds decompression when VerifyOptions leaves it 0.
const defaultVerifyRecordBytes = 64 << 20

// Verify checks every segment of the partition directory dir: each batch
// (length, magic, CRC, codec, record count, offsets increasing, inside the
// segment's range and not below the base offset in its file name), each
// index entry (monotonic, pointing at the start of a batch that holds the
// entry's offset) and each producer state snapshot (it decodes). A first
// batch above the file's base offset is not a problem: compaction leaves
// such gaps. The error is non-nil only when the directory cannot be
// listed; damage is reported in VerifyReport.Problems.
func Verify(fsys vfs.FS, dir string, o VerifyOptions) (*VerifyReport, error) {
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = defaultVerifyRecordBytes
	}
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("log: verify %s: %w", dir, err)
	}
	r := &VerifyReport{Dir: dir}
	var bases []int64
	var snapshots []string
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
		if base, ok := verifyParseName(n, ".log"); ok {
			bases = append(bases, base)
			continue
		}
		if _, ok := verifyParseName(n, ".snapshot"); ok {
			snapshots = append(snapshots, filepath.Join(dir, n))
			continue
		}
		switch {
		case strings.HasSuffix(n, ".cleaned"), strings.HasSuffix(n, ".swap"), strings.HasSuffix(n, ".deleted"),
			strings.HasSuffix(n, ".tmp"):
			r.Notes = append(r.Notes, fmt.Sprintf("%s: leftover of an interrupted operation; the next open removes or completes it", n))
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	prevLast := int64(-1)
	for i, base := range bases {
		next := int64(-1)
		if i+1 < len(bases) {
			next = bases[i+1]
		}
		sr, batches := verifySegment(fsys, dir, base, next, prevLast, o, r)
		for _, suffix := range []string{".index", ".timeindex"} {
			name := fmt.Sprintf("%020d%s", base, suffix)
			if !have[name] {
				r.Notes = append(r.Notes, fmt.Sprintf("%s: missing; the next open rebuilds it", name))
				continue
			}
			if suffix == ".index" {
				sr.IndexEntries = verifyOffsetIndex(fsys, filepath.Join(dir, name), base, batches, r)
			} else {
				sr.TimeIndexEntries = verifyTimeIndex(fsys, filepath.Join(dir, name), base, sr, r)
			}
		}
		if sr.LastOffset >= 0 {
			prevLast = sr.LastOffset
		}
		r.Segments = append(r.Segments, sr)
	}
	for _, path := range snapshots {
		verifyProducerSnapshot(fsys, path, r)
	}
	return r, nil
}

// verifyProducerSnapshot checks that an idempotent producer state snapshot
// (<offset>.snapshot) decodes: length, version, CRC and field ranges.
func verifyProducerSnapshot(fsys vfs.FS, path string, r *VerifyReport) {
	f, err := fsys.Open(path)
	if err != nil {
		r.problem(path, -1, -1, "%v", err)
		return
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		r.problem(path, -1, -1, "%v", err)
		return
	}
	if size > maxVerifyIndexBytes {
		r.problem(path, -1, -1, "%d bytes, too large for a producer snapshot", size)
		return
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && size > 0 {
		r.problem(path, -1, -1, "%v", err)
		return
	}
	if _, err := unmarshalProducerStates(data); err != nil {
		off, _ := verifyParseName(filepath.Base(path), ".snapshot")
		r.problem(path, 0, off, "%v", err)
	}
}

// SegmentLogFiles returns the paths of the segment files (%020d.log) in the
// partition directory dir, in offset order.
func SegmentLogFiles(fsys vfs.FS, dir string) ([]string, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", dir, err)
	}
	var out []string
	for _, n := range names {
		if _, ok := verifyParseName(n, ".log"); ok {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out) // zero-padded names sort in offset order
	return out, nil
}

// batchSpan is where one batch sits and which offsets it holds.
type batchSpan struct {
	pos         int64
	first, last int64
}

// ScanLogFile calls fn for every batch of the segment file at path, in
// order, with its byte position. A batch whose length is sound but which
// fails another check (CRC, magic...) is passed with a non-nil err, and the
// scan goes on after it. Damage that hides where the next batch starts (a
// truncated header or an impossible length) ends the scan with a
// *CorruptError. An error fn returns ends the scan and is returned as is.
func ScanLogFile(fsys vfs.FS, path string, fn func(pos int64, b batch.Batch, err error) error) error {
	f, err := fsys.Open(path)
	if err != nil {
		return fmt.Errorf("log: scan %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("log: scan %s: %w", path, err)
	}
	return scanBatches(f, path, size, fn)
}

// scanBatches is ScanLogFile over the first size bytes of an open file.
func scanBatches(f vfs.File, path string, size int64, fn func(pos int64, b batch.Batch, err error) error) error {
	var hdr [batch.LogOverhead]byte
	var buf []byte
	for pos := int64(0); pos < size; {
		if size-pos < batch.LogOverhead {
			return &CorruptError{Path: path, Pos: pos, Offset: -1, Reason: fmt.Sprintf("%d trailing bytes, too short for a batch", size-pos)}
		}
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("log: scan %s at %d: %w", path, pos, err)
		}
		offset := int64(binary.BigEndian.Uint64(hdr[:]))
		n, err := batch.Size(hdr[:])
		if err != nil {
			return &CorruptError{Path: path, Pos: pos, Offset: offset, Reason: err.Error()}
		}
		if int64(n) > size-pos {
			return &CorruptError{Path: path, Pos: pos, Offset: offset,
				Reason: fmt.Sprintf("batch of %d bytes runs past the end of the file (%d bytes left)", n, size-pos)}
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := f.ReadAt(buf, pos); err != nil {
			return fmt.Errorf("log: scan %s at %d: %w", path, pos, err)
		}
		b, perr := batch.Parse(buf)
		if perr != nil {
			b = batch.Batch(buf)
		}
		if err := fn(pos, b, perr); err != nil {
			return err
		}
		pos += int64(n)
	}
	return nil
}

// verifySegment checks the .log file of one segment and returns its summary
// and the batches that passed, by position.
func verifySegment(fsys vfs.FS, dir string, base, nextBase, prevLast int64, o VerifyOptions, r *VerifyReport) (SegmentReport, []batchSpan) {
	path := filepath.Join(dir, fmt.Sprintf("%020d.log", base))
	sr := SegmentReport{Base: base, FirstOffset: -1, LastOffset: -1, MaxTimestamp: -1}
	if size, err := fsys.Stat(path); err == nil {
		sr.LogBytes = size
	}
	var spans []batchSpan
	var recBuf []byte
	err := ScanLogFile(fsys, path, func(pos int64, b batch.Batch, perr error) error {
		first, last := b.BaseOffset(), b.LastOffset()
		// A batch that fails its own checks is reported once; its framing
		// is sound, so it still counts as a batch start for the indexes.
		switch {
		case perr != nil:
			r.problem(path, pos, first, "%v", perr)
		case first < base:
			r.problem(path, pos, first, "batch offset %d below the segment's base offset %d", first, base)
		case first <= prevLast:
			r.problem(path, pos, first, "batch offset %d not above the previous batch's last offset %d", first, prevLast)
		case nextBase >= 0 && last >= nextBase:
			r.problem(path, pos, first, "batch ends at offset %d, at or past the next segment's base %d", last, nextBase)
		case last < first:
			r.problem(path, pos, first, "last offset %d below base offset %d", last, first)
		}
		if o.Records && perr == nil {
			if err := verifyRecords(b, o.MaxRecordBytes, &recBuf); err != nil {
				r.problem(path, pos, first, "%v", err)
			}
		}
		spans = append(spans, batchSpan{pos: pos, first: first, last: last})
		if sr.FirstOffset < 0 {
			sr.FirstOffset = first
		}
		sr.LastOffset = max(sr.LastOffset, last)
		sr.MaxTimestamp = max(sr.MaxTimestamp, b.MaxTimestamp())
		sr.Batches++
		sr.Records += int64(b.RecordCount())
		if perr != nil {
			last = first // its lastOffsetDelta is not to be trusted for the next batch's check
		}
		prevLast = max(prevLast, last)
		return nil
	})
	if err != nil {
		if ce, ok := errors.AsType[*CorruptError](err); ok {
			r.Problems = append(r.Problems, ce)
		} else {
			r.problem(path, -1, -1, "%v", err)
		}
	}
	return sr, spans
}

// verifyRecords decodes every record of b.
func verifyRecords(b batch.Batch, limit int, buf *[]byte) error {
	sec, err := b.Decompress(*buf, limit)
	if err != nil {
		return err
	}
	if b.Codec() != batch.CodecNone {
		*buf = sec
	}
	it := batch.NewIter(sec, b.RecordCount(), b.BaseOffset(), b.BaseTimestamp(), b.LastOffsetDelta())
	for it.Next() {
	}
	return it.Err()
}

// readIndexFile reads a whole index file; a short final entry is reported.
func readIndexFile(fsys vfs.FS, path string, entry int, r *VerifyReport) []byte {
	f, err := fsys.Open(path)
	if err != nil {
		r.problem(path, -1, -1, "%v", err)
		return nil
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		r.problem(path, -1, -1, "%v", err)
		return nil
	}
	if size > maxVerifyIndexBytes {
		r.problem(path, -1, -1, "%d bytes, larger than any index the log writes (segment.index.bytes ≤ 2 GiB)", size)
		return nil
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil {
		r.problem(path, -1, -1, "%v", err)
		return nil
	}
	if rem := len(data) % entry; rem != 0 {
		r.problem(path, size-int64(rem), -1, "%d trailing bytes, not a whole %d-byte entry", rem, entry)
		data = data[:len(data)-rem]
	}
	return data
}

// verifyOffsetIndex checks .index entries [4 relative offset][4 position]:
// strictly increasing, each at the start of a batch holding that offset.
func verifyOffsetIndex(fsys vfs.FS, path string, base int64, spans []batchSpan, r *VerifyReport) int {
	data := readIndexFile(fsys, path, verifyIndexEntry, r)
	byPos := make(map[int64]batchSpan, len(spans))
	for _, s := range spans {
		byPos[s.pos] = s
	}
	prevRel, prevPos := int64(-1), int64(-1)
	n := len(data) / verifyIndexEntry
	for i := range n {
		at := int64(i * verifyIndexEntry)
		rel := int64(binary.BigEndian.Uint32(data[at:]))
		pos := int64(binary.BigEndian.Uint32(data[at+4:]))
		off := base + rel
		if rel <= prevRel || pos <= prevPos {
			r.problem(path, at, off, "entry %d (offset %d, position %d) not above entry %d (offset %d, position %d)",
				i, off, pos, i-1, base+prevRel, prevPos)
		}
		prevRel, prevPos = max(prevRel, rel), max(prevPos, pos)
		s, ok := byPos[pos]
		switch {
		case !ok:
			r.problem(path, at, off, "entry %d: position %d is not the start of a valid batch", i, pos)
		case off < s.first || off > s.last:
			r.problem(path, at, off, "entry %d: offset %d is not in the batch at position %d (offsets %d..%d)",
				i, off, pos, s.first, s.last)
		}
	}
	return n
}

// verifyTimeIndex checks .timeindex entries [8 timestamp][4 relative
// offset]: both non-decreasing, offsets within the segment, timestamps not
// above the segment's largest batch timestamp.
func verifyTimeIndex(fsys vfs.FS, path string, base int64, sr SegmentReport, r *VerifyReport) int {
	data := readIndexFile(fsys, path, verifyTimeEntry, r)
	prevTs, prevRel := int64(-1<<63), int64(-1)
	n := len(data) / verifyTimeEntry
	for i := range n {
		at := int64(i * verifyTimeEntry)
		ts := int64(binary.BigEndian.Uint64(data[at:]))
		rel := int64(binary.BigEndian.Uint32(data[at+8:]))
		off := base + rel
		if ts < prevTs || rel < prevRel {
			r.problem(path, at, off, "entry %d (timestamp %d, offset %d) below the entry before it (timestamp %d, offset %d)",
				i, ts, off, prevTs, base+prevRel)
		}
		prevTs, prevRel = max(prevTs, ts), max(prevRel, rel)
		if sr.LastOffset < 0 || off < sr.FirstOffset || off > sr.LastOffset {
			r.problem(path, at, off, "entry %d: offset %d outside the segment's batches (%d..%d)", i, off, sr.FirstOffset, sr.LastOffset)
		}
		if ts > sr.MaxTimestamp {
			r.problem(path, at, off, "entry %d: timestamp %d above every batch's maxTimestamp (%d)", i, ts, sr.MaxTimestamp)
		}
	}
	return n
}

// partitionDirName matches Kafka's "<topic>-<partition>" directory names.
var partitionDirName = regexp.MustCompile(`^[a-zA-Z0-9._-]+-[0-9]+$`)

// PartitionDirs returns the partition directories under dir: dir itself when
// it holds segment files (or is named like a partition), otherwise every
// subdirectory named "<topic>-<partition>", sorted.
func PartitionDirs(fsys vfs.FS, dir string) ([]string, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("log: list %s: %w", dir, err)
	}
	for _, n := range names {
		if _, ok := verifyParseName(n, ".log"); ok {
			return []string{dir}, nil
		}
	}
	var out []string
	for _, n := range names {
		if !partitionDirName.MatchString(n) {
			continue
		}
		sub := filepath.Join(dir, n)
		if _, err := fsys.List(sub); err == nil { // a directory
			out = append(out, sub)
		}
	}
	if len(out) == 0 && partitionDirName.MatchString(filepath.Base(filepath.Clean(dir))) {
		return []string{dir}, nil // an empty partition
	}
	return out, nil
}
