package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// ReadOptions bounds one Read.
type ReadOptions struct {
	// MaxBytes is the byte budget. The first batch is returned whole even if
	// it is larger (KIP-74); <= 0 returns just that batch.
	MaxBytes int
	// MaxOffset is an exclusive upper bound: no batch whose last offset is
	// >= MaxOffset is returned (the high watermark or last stable offset).
	// 0 means the log end offset.
	MaxOffset int64
}

// Region is a run of whole batches in one segment file: File's bytes
// [Pos, Pos+Size). Send it with sendfile at an explicit offset (the log never
// uses the file's current offset) or copy it with ReadAt. When Data is set
// the bytes were already read past the page cache (the region lies behind
// the partition's page cache window, Options.PageCacheWindow): write Data
// instead, which stays valid until the result is released.
type Region struct {
	File vfs.File
	Pos  int64
	Size int64
	Data []byte
}

// ReadResult is the answer to a Read. Its files stay open, even if retention
// deletes their segments meanwhile, until Release is called.
type ReadResult struct {
	Regions        []Region
	Bytes          int64 // total size of the regions
	LogStartOffset int64 // as seen by the read
	LogEndOffset   int64 // as seen by the read

	segs     []*segment
	chunks   []*directRead // holding the Data of regions
	released atomic.Bool
}

// Release lets go of the result's files. It is safe to call more than once.
func (r *ReadResult) Release() {
	if r == nil || r.released.Swap(true) {
		return
	}
	for _, s := range r.segs {
		s.release()
	}
	for _, c := range r.chunks {
		c.release()
	}
}

// verifyBufs holds buffers for CRC-checking regions on their first read.
var verifyBufs = sync.Pool{New: func() any { return new([]byte) }}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// WriteTo copies the regions' bytes to w. It is the copy path for writers
// that cannot take a file region (tests, TLS connections).
func (r *ReadResult) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for _, rg := range r.Regions {
		if rg.Data != nil {
			n, err := w.Write(rg.Data)
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		for done := int64(0); done < rg.Size; {
			n := min(int64(len(buf)), rg.Size-done)
			m, err := rg.File.ReadAt(buf[:n], rg.Pos+done)
			if int64(m) < n {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return total, fmt.Errorf("log: read %s at %d: %w", rg.File.Name(), rg.Pos+done, err)
			}
			k, err := w.Write(buf[:n])
			total += int64(k)
			if err != nil {
				return total, err
			}
			done += n
		}
	}
	return total, nil
}

// maxReadRetries bounds how often Read restarts when retention removes the
// segment it was about to read.
const maxReadRetries = 100

// Read returns whole batches starting with the one that contains offset, up
// to the byte budget and MaxOffset, as file regions. Offsets outside
// [LogStartOffset, LogEndOffset] give ErrOffsetOutOfRange; reading at
// LogEndOffset (or at or past MaxOffset) returns no regions. A batch that
// fails its CRC check is never returned: the result stops before it, or a
// *CorruptError is returned if it is the first batch. Read never blocks the
// writer. The caller must Release the result.
func (p *Partition) Read(offset int64, o ReadOptions) (*ReadResult, error) {
	for range maxReadRetries {
		if p.closed.Load() {
			return nil, ErrClosed
		}
		gen := p.aheadGen.Load()
		leo := p.endOffset.Load()
		start := p.startOffset.Load()
		res := &ReadResult{LogStartOffset: start, LogEndOffset: leo}
		if offset < start || offset > leo {
			return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, leo)
		}
		maxOff := o.MaxOffset
		if maxOff <= 0 || maxOff > leo {
			maxOff = leo
		}
		if offset >= maxOff {
			return res, nil
		}
		l := p.segs.Load()
		i := max(l.find(offset), 0)
		retry := false
		for ; i < len(l.segs); i++ {
			s := l.segs[i]
			if !s.acquire() {
				retry = true
				break
			}
			if pos, size, c, ok := p.readMem(l, i, offset, maxOff, int64(o.MaxBytes), gen); ok {
				// Data behind the page cache window, read past the cache.
				if pos < 0 {
					c.release()
					s.release()
					return res, nil
				}
				res.Regions = append(res.Regions, Region{File: s.log, Pos: pos, Size: size, Data: c.data[pos-c.pos:][:size]})
				res.Bytes = size
				res.segs = append(res.segs, s)
				res.chunks = append(res.chunks, c)
				return res, nil
			}
			pos, size, err := readSegment(s, offset, maxOff, int64(o.MaxBytes))
			if err != nil {
				s.release()
				return nil, err
			}
			if size > 0 {
				res.Regions = append(res.Regions, Region{File: s.log, Pos: pos, Size: size})
				res.Bytes = size
				res.segs = append(res.segs, s)
				return res, nil
			}
			s.release()
			if pos < 0 { // stopped at maxOff inside this segment
				return res, nil
			}
		}
		if !retry {
			return res, nil
		}
	}
	return nil, fmt.Errorf("log: read at %d: segments kept changing under the reader", offset)
}

// OnOlderSegment reports whether offset lies in an older segment than
// other, that is whether a segment starts in (offset, other]. A Read stops at
// the end of one segment, so a read at offset cannot reach other in one go
// (Kafka's LogOffsetMetadata.onOlderSegment). It looks only at the published
// segment list, never at a file.
func (p *Partition) OnOlderSegment(offset, other int64) bool {
	l := p.segs.Load()
	return l.find(offset) < l.find(other)
}

// HasBytes reports whether the batches from the one holding offset up to
// maxOffset (exclusive) are known, from the offset index alone, to take at
// least n bytes: from the start of the first index entry at or after offset
// (no later than that batch's start) to the start of the last entry below
// maxOffset (no later than the end of what a read up to maxOffset returns).
// false means not known: there may be fewer bytes, or the index may be too
// sparse to tell, and a Read tells. It never reads the log file, so a
// delayed fetch can ask it for data behind the page cache window without
// reading that data twice. Both offsets must lie in one segment.
func (p *Partition) HasBytes(offset, maxOffset, n int64) bool {
	l := p.segs.Load()
	i := l.find(offset)
	if i < 0 || maxOffset <= offset || l.find(maxOffset-1) != i {
		return false
	}
	s := l.segs[i]
	if !s.acquire() {
		return false
	}
	defer s.release()
	limit := s.size.Load()
	ix, fi := s.index()
	rel := func(o int64) uint32 { return uint32(min(max(o-s.base, 0), math.MaxUint32)) }
	from := ceilEntry(ix, rel(offset), limit)
	to := floorEntry(ix, rel(maxOffset-1), limit)
	if fi != nil && fi.err != nil || from < 0 {
		return false
	}
	return to-from >= n
}

// batchHeader is what a scan needs from a batch header.
type batchHeader struct {
	base, last int64
	size       int64
	maxTs      int64
	baseTs     int64
}

func parseHeader(h []byte) (batchHeader, bool) {
	n := int64(int32(binary.BigEndian.Uint32(h[8:])))
	if n < batch.HeaderSize-batch.LogOverhead || h[16] != batch.Magic {
		return batchHeader{}, false
	}
	base := int64(binary.BigEndian.Uint64(h[0:]))
	lod := int64(int32(binary.BigEndian.Uint32(h[23:])))
	if lod < 0 || base < 0 {
		return batchHeader{}, false
	}
	return batchHeader{
		base:   base,
		last:   base + lod,
		size:   batch.LogOverhead + n,
		baseTs: int64(binary.BigEndian.Uint64(h[27:])),
		maxTs:  int64(binary.BigEndian.Uint64(h[35:])),
	}, true
}

// scanner reads batch headers from a segment file, buffering small batches.
type scanner struct {
	f      vfs.File
	path   string
	limit  int64 // bytes that may be read
	buf    []byte
	bufPos int64
	n      int
	small  bool // the previous batch was small: read ahead
}

var scanBufs = sync.Pool{New: func() any { return &scanner{buf: make([]byte, 4096)} }}

func newScanner(s *segment, limit int64) *scanner {
	sc := scanBufs.Get().(*scanner)
	sc.f, sc.path, sc.limit, sc.n, sc.small = s.log, s.logPath(), limit, 0, true
	return sc
}

func (sc *scanner) done() { sc.f = nil; scanBufs.Put(sc) }

// header returns the header of the batch at pos; a *CorruptError if it cannot
// be a batch (or runs past the limit).
func (sc *scanner) header(pos int64) (batchHeader, error) {
	if pos+batch.HeaderSize > sc.limit {
		return batchHeader{}, &CorruptError{Path: sc.path, Pos: pos, Offset: -1, Reason: "truncated batch header"}
	}
	if pos < sc.bufPos || pos+batch.HeaderSize > sc.bufPos+int64(sc.n) {
		want := int64(batch.HeaderSize)
		if sc.small {
			want = int64(len(sc.buf))
		}
		want = min(want, sc.limit-pos)
		n, err := sc.f.ReadAt(sc.buf[:want], pos)
		if n < batch.HeaderSize {
			if err == nil || errors.Is(err, io.EOF) {
				return batchHeader{}, &CorruptError{Path: sc.path, Pos: pos, Offset: -1, Reason: "truncated batch header"}
			}
			return batchHeader{}, fmt.Errorf("log: read %s at %d: %w", sc.path, pos, err)
		}
		sc.bufPos, sc.n = pos, n
	}
	h, ok := parseHeader(sc.buf[pos-sc.bufPos:])
	if !ok || pos+h.size > sc.limit {
		return batchHeader{}, &CorruptError{Path: sc.path, Pos: pos, Offset: -1, Reason: "invalid batch header"}
	}
	sc.small = h.size < 2048
	return h, nil
}

// readSegment finds the batch of s that contains offset and extends the
// region while batches fit the budget and end before maxOff. It returns
// size 0 and pos 0 when the segment holds nothing at or after offset, and
// size 0 and pos -1 when the first such batch reaches maxOff.
func readSegment(s *segment, offset, maxOff, budget int64) (pos, size int64, err error) {
	limit := s.size.Load()
	if offset >= s.next.Load() || limit == 0 {
		return 0, 0, nil
	}
	rel := max(offset-s.base, 0)
	ix, fi := s.index()
	start := floorEntry(ix, uint32(min(rel, 1<<32-1)), limit)
	if fi != nil && fi.err != nil {
		return 0, 0, fmt.Errorf("log: read index of %s: %w", s.logPath(), fi.err)
	}
	sc := newScanner(s, limit)
	defer sc.done()
	pos = start
	var h batchHeader
	for {
		if pos >= limit {
			return 0, 0, nil
		}
		if h, err = sc.header(pos); err != nil {
			if start > 0 && errors.Is(err, ErrCorrupt) {
				// The index may be what is damaged: scan from the start.
				start, pos = 0, 0
				continue
			}
			return 0, 0, err
		}
		if h.last >= offset {
			break
		}
		pos += h.size
	}
	if h.last >= maxOff {
		return -1, 0, nil
	}
	end := pos + h.size
	if pos < s.goodFrom.Load() && min(limit, pos+max(budget, h.size)) > s.verified.Load() {
		// Bytes not yet CRC-checked: read the whole region once, in order
		// (so cold reads stream), and walk its batches in memory.
		size, err := verifiedRegion(s, pos, limit, maxOff, max(budget, h.size))
		return pos, size, err
	}
	if budget > h.size {
		// Jump over whole batches with the index: batches before an entry's
		// position end below that entry's last offset. The header found there
		// must be the batch the entry describes, or the jump is not taken.
		if j, rel := jumpEntry(ix, pos+budget, maxOff-s.base); j > end && j <= limit {
			if hj, err := sc.header(j); err == nil && hj.last == s.base+int64(rel) {
				end = j
			}
		}
		if fi != nil && fi.err != nil {
			return 0, 0, fmt.Errorf("log: read index of %s: %w", s.logPath(), fi.err)
		}
	}
	for end < limit {
		h, err := sc.header(end)
		if err != nil || h.last >= maxOff || end+h.size-pos > budget {
			break
		}
		end += h.size
	}
	if pos < s.goodFrom.Load() && end > s.verified.Load() {
		if end, err = verifyRegion(s, pos, end); err != nil {
			return 0, 0, err
		}
	}
	return pos, end - pos, nil
}

// verifiedRegion reads up to want bytes of s from pos, CRC-checks the
// batches in them, and returns the size of the run of whole, valid batches
// that end before maxOff. The first batch failing is a *CorruptError. The
// segment's verified mark advances when the run joins it.
func verifiedRegion(s *segment, pos, limit, maxOff, want int64) (int64, error) {
	n := min(limit-pos, want)
	bp := verifyBufs.Get().(*[]byte)
	defer verifyBufs.Put(bp)
	if int64(cap(*bp)) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:n]
	if m, err := s.log.ReadAt(buf, pos); int64(m) < n {
		return 0, fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
	}
	off := 0
	for off < len(buf) {
		size, err := batch.Size(buf[off:])
		if err == nil && off+size > len(buf) {
			if off > 0 {
				break // the next batch does not fit the budget
			}
			err = &batch.Error{Reason: batch.ReasonShort, Detail: "batch runs past the segment end"}
		}
		var bt batch.Batch
		if err == nil {
			bt, err = batch.Parse(buf[off : off+size])
		}
		if err != nil {
			if off == 0 {
				bad := int64(-1)
				if len(buf) >= 8 {
					bad = int64(binary.BigEndian.Uint64(buf))
				}
				return 0, &CorruptError{Path: s.logPath(), Pos: pos, Offset: bad, Reason: err.Error()}
			}
			break
		}
		if off > 0 && bt.LastOffset() >= maxOff {
			break
		}
		off += size
	}
	for good := pos + int64(off); ; {
		v := s.verified.Load()
		if pos > v || good <= v || s.verified.CompareAndSwap(v, good) {
			break
		}
	}
	return int64(off), nil
}

// verifyRegion checks the CRC of every batch in [pos, end) of s, which were
// not written or scanned by this process, and returns where the valid run
// stops. The segment's verified mark advances when the run joins it.
func verifyRegion(s *segment, pos, end int64) (int64, error) {
	bp := verifyBufs.Get().(*[]byte)
	defer verifyBufs.Put(bp)
	if int64(cap(*bp)) < end-pos {
		*bp = make([]byte, end-pos)
	}
	buf := (*bp)[:end-pos]
	if n, err := s.log.ReadAt(buf, pos); int64(n) < end-pos {
		return 0, fmt.Errorf("log: read %s at %d: %w", s.logPath(), pos, err)
	}
	good := pos
	for off := 0; off < len(buf); {
		bt, err := batch.Parse(buf[off:])
		if err != nil {
			if good == pos {
				bad := int64(-1)
				if len(buf)-off >= 8 {
					bad = int64(binary.BigEndian.Uint64(buf[off:]))
				}
				return 0, &CorruptError{Path: s.logPath(), Pos: pos + int64(off), Offset: bad, Reason: err.Error()}
			}
			break
		}
		off += len(bt)
		good = pos + int64(off)
	}
	for {
		v := s.verified.Load()
		if pos > v || good <= v || s.verified.CompareAndSwap(v, good) {
			break
		}
	}
	return good, nil
}

// jumpEntry returns the position and relative offset of the last index
// entry at or below maxPos whose batch ends below maxRel (relative to the
// segment base), or position 0.
func jumpEntry(ix indexReader, maxPos, maxRel int64) (int64, uint32) {
	n := ix.len()
	lo, hi := int64(0), n // first entry past maxPos or reaching maxRel
	for lo < hi {
		mid := lo + (hi-lo)/2
		rel, p := unpackEntry(ix.at(mid))
		if int64(p) > maxPos || int64(rel) >= maxRel {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return 0, 0
	}
	rel, p := unpackEntry(ix.at(lo - 1))
	return int64(p), rel
}
