package log

import (
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/weir-broker/weir/log/batch"
	"github.com/weir-broker/weir/log/vfs"
)

// Reads behind the page cache window (Options.PageCacheWindow) do not go
// through the page cache, which would take fresh pages for data nobody reads
// twice: Read reads the bytes with direct I/O into a reused buffer, finds
// the batches in memory, and hands the bytes out as Region.Data. Such reads
// also read ahead, because Kafka clients send their next fetch only after
// the previous one was answered: the partition keeps up to aheadDepth
// reads of the fetches predicted to come next, each started as soon as the
// one before it has landed (its batches tell where the fetch after it will
// start), so a consumer catching up finds its next fetch in memory and the
// device is already reading the one after while the answer is sent. With
// one read ahead, started only when the fetch before arrived, a fifth of
// the fetches in docs/benchmarks.md's 1 KiB consume still waited for it.

// directHandle is a segment's log file opened for direct I/O; f is nil
// when the file system refused (tmpfs, or no DirectOpener), so the attempt
// is made once per segment.
type directHandle struct{ f vfs.File }

// directFile returns the segment's log file opened for direct I/O, opening
// it on first use, or nil when the file system cannot. The caller holds a
// reference to the segment; the handle is closed with the segment's files.
func (s *segment) directFile() vfs.File {
	if d := s.direct.Load(); d != nil {
		return d.f
	}
	d := &directHandle{}
	if o, ok := s.fs.(vfs.DirectOpener); ok {
		if f, err := o.OpenDirect(s.logPath()); err == nil {
			d.f = f
		}
	}
	if !s.direct.CompareAndSwap(nil, d) {
		if d.f != nil {
			_ = d.f.Close()
		}
		return s.direct.Load().f
	}
	return d.f
}

// directChunk is the size of the buffers of direct reads: a default fetch
// of one partition (max.partition.fetch.bytes, 1 MiB) from any position,
// with room to spare. Reads with a larger budget use the page cache.
const directChunk = 2 << 20

// maxDirectChunks bounds the direct-read buffers held across the process
// (64 MiB); past it reads use the page cache.
const maxDirectChunks = 32

var (
	directBufs   = sync.Pool{New: func() any { return alignedBuf(directChunk) }}
	directChunks atomic.Int64
)

// alignedBuf allocates n bytes starting at a vfs.DirectAlignment boundary.
func alignedBuf(n int) *[]byte {
	raw := make([]byte, n+vfs.DirectAlignment)
	skip := (vfs.DirectAlignment - int(uintptr(unsafe.Pointer(&raw[0]))%vfs.DirectAlignment)) % vfs.DirectAlignment
	b := raw[skip : skip+n : skip+n]
	return &b
}

// directRead is bytes of a segment's log file read with direct I/O: data
// holds the file's bytes from pos on once done is closed (empty if the read
// failed). It is shared by the partition's read-ahead slot, the goroutine
// reading it and the read results handing out its bytes.
type directRead struct {
	seg  *segment
	gen  uint64 // Partition.aheadGen when it was read
	pos  int64
	want int64 // the fetch budget a read-ahead was sized for
	buf  *[]byte
	data []byte
	done chan struct{}
	refs atomic.Int32
}

// newDirectRead reserves a buffer for up to directChunk bytes of s at pos
// with refs references, or returns nil when too many are held.
func newDirectRead(s *segment, pos int64, gen uint64, refs int32) *directRead {
	if directChunks.Add(1) > maxDirectChunks {
		directChunks.Add(-1)
		return nil
	}
	c := &directRead{seg: s, gen: gen, pos: pos, buf: directBufs.Get().(*[]byte), done: make(chan struct{})}
	c.refs.Store(refs)
	return c
}

// read fills the chunk with up to n bytes of f from c.pos and marks it done.
func (c *directRead) read(f vfs.File, n int64) {
	defer close(c.done)
	const align = vfs.DirectAlignment
	start := c.pos &^ (align - 1)
	skip := c.pos - start
	n = min(n, int64(len(*c.buf))-skip)
	m, _ := f.ReadAt((*c.buf)[:(skip+n+align-1)&^(align-1)], start)
	if got := min(int64(m)-skip, n); got > 0 {
		c.data = (*c.buf)[skip : skip+got]
	}
}

func (c *directRead) release() {
	if c.refs.Add(-1) == 0 {
		directBufs.Put(c.buf)
		directChunks.Add(-1)
	}
}

// readMem is readSegment for data behind the page cache window, segment i
// of l: it finds the region for offset in memory, from the partition's
// read-ahead when that starts at or before the batch sought, or else from
// one direct read of the bytes from the index entry at or before it. ok is
// false when the data is within the window or readMem cannot serve it (no
// window or direct I/O, a budget over half a buffer, too many buffers
// held, a failed read, a batch larger than the buffer, bytes a previous
// process wrote that were not CRC-checked yet); the caller then reads
// through the page cache. With ok, pos < 0 means the batch sought ends at
// or past maxOff; otherwise the region is c.data[pos-c.pos:][:size]. The
// caller owns one reference to c either way.
func (p *Partition) readMem(l *segList, i int, offset, maxOff, budget int64, gen uint64) (pos, size int64, c *directRead, ok bool) {
	if p.cache.limit == 0 || budget > directChunk/2 {
		return 0, 0, nil, false
	}
	s := l.segs[i]
	limit := s.size.Load()
	if offset >= s.next.Load() || limit == 0 {
		return 0, 0, nil, false
	}
	ix, fi := s.index()
	floor := floorEntry(ix, uint32(min(max(offset-s.base, 0), 1<<32-1)), limit)
	if fi != nil && fi.err != nil || !p.behindWindow(l, i, floor+budget) {
		return 0, 0, nil, false
	}
	f := s.directFile()
	if f == nil {
		return 0, 0, nil, false
	}
	for _, a := range p.takeAhead(s, gen) {
		if a == nil {
			break
		}
		if c != nil {
			a.release()
			continue
		}
		<-a.done
		if h, hok := a.header(a.pos, limit); hok && h.base <= offset {
			pos, size, ok = a.region(offset, maxOff, budget, limit)
		}
		if ok {
			c = a
		} else { // it starts past the batch sought, or ends before the first batch does
			a.release()
		}
	}
	if c == nil {
		if c = newDirectRead(s, floor, gen, 1); c == nil {
			return 0, 0, nil, false
		}
		c.read(f, min(limit-floor, directChunk))
		pos, size, ok = c.region(offset, maxOff, budget, limit)
	}
	if ok && pos >= 0 && pos < s.goodFrom.Load() && pos+size > s.verified.Load() {
		ok = false // not CRC-checked yet: readSegment verifies it
	}
	if !ok {
		c.release()
		return 0, 0, nil, false
	}
	if pos >= 0 {
		p.advanceAhead(s, f, pos+size, max(size, budget), gen)
	}
	return pos, size, c, true
}

// header parses the batch header at file position pos if the chunk holds it.
func (c *directRead) header(pos, limit int64) (batchHeader, bool) {
	at := pos - c.pos
	if at < 0 || at+batch.HeaderSize > int64(len(c.data)) || pos+batch.HeaderSize > limit {
		return batchHeader{}, false
	}
	h, ok := parseHeader(c.data[at : at+batch.HeaderSize])
	return h, ok && h.size >= batch.HeaderSize
}

// region walks the chunk's batches from its start: the first batch whose
// last offset reaches offset, then whole batches up to budget bytes, before
// maxOff, within limit and within the chunk. ok is false if the first batch
// is not wholly in the chunk.
func (c *directRead) region(offset, maxOff, budget, limit int64) (pos, size int64, ok bool) {
	end := c.pos + int64(len(c.data))
	pos = c.pos
	var h batchHeader
	for {
		if h, ok = c.header(pos, limit); !ok {
			return 0, 0, false
		}
		if h.last >= offset {
			break
		}
		pos += h.size
	}
	if h.last >= maxOff {
		return -1, 0, true
	}
	next := pos + h.size
	if next > end || next > limit {
		return 0, 0, false
	}
	for {
		hn, hok := c.header(next, limit)
		if !hok || hn.last >= maxOff || next+hn.size-pos > budget || next+hn.size > end || next+hn.size > limit {
			break
		}
		next += hn.size
	}
	return pos, next - pos, true
}

// aheadDepth is how many reads of predicted fetches a partition keeps.
const aheadDepth = 2

// aheadSpare sizes the slack of a read-ahead: want/aheadSpare bytes past
// the fetch's budget, for a first batch a little larger than the last
// fetch's (a larger one is read when the fetch comes). The bytes read past
// the batches a fetch serves are read again by the next read-ahead, so
// slack costs device bandwidth: with an eighth, a 1 KiB consume of 1 MB
// batches read 18% more than it served and ran 8% slower
// (docs/benchmarks.md, "Session 5").
const aheadSpare = 64

// takeAhead returns, each with a reference, the partition's read-aheads if
// they are of segment s and were started since the last truncation, in
// file order (nil after the last; an array, so the fetch path allocates
// nothing for it).
func (p *Partition) takeAhead(s *segment, gen uint64) (out [aheadDepth]*directRead) {
	p.aheadMu.Lock()
	defer p.aheadMu.Unlock()
	if gen != p.aheadGen.Load() {
		return out
	}
	n := 0
	for _, c := range p.ahead {
		if c.seg == s && c.gen == gen {
			c.refs.Add(1)
			out[n] = c
			n++
		}
	}
	return out
}

// advanceAhead records that a fetch was answered up to from (a batch
// boundary of s) with about want bytes: read-aheads before from are let go,
// and unless the next one already starts at from, reading starts there.
// Once the first read-ahead has landed, the one after it is started.
func (p *Partition) advanceAhead(s *segment, f vfs.File, from, want int64, gen uint64) {
	p.aheadMu.Lock()
	if gen != p.aheadGen.Load() || p.closed.Load() {
		p.aheadMu.Unlock()
		return
	}
	var drop []*directRead
	keep := p.ahead[:0]
	for _, c := range p.ahead {
		if c.seg == s && c.pos >= from && (len(keep) > 0 || c.pos == from) {
			keep = append(keep, c)
		} else {
			drop = append(drop, c)
		}
	}
	clear(p.ahead[len(keep):])
	p.ahead = keep
	var last *directRead
	if len(keep) > 0 {
		last = keep[len(keep)-1]
	}
	p.aheadMu.Unlock()
	for _, c := range drop {
		c.release()
	}
	switch {
	case last == nil:
		p.startAhead(s, f, from, want, gen, nil)
	case isDone(last):
		p.chainAhead(last, f)
	}
}

// chainAhead starts reading the fetch predicted after read-ahead c (which
// has landed) if c is still the partition's last one and there is room
// (startAhead checks again when it appends).
func (p *Partition) chainAhead(c *directRead, f vfs.File) {
	p.aheadMu.Lock()
	ok := p.ahead.followable(c)
	p.aheadMu.Unlock()
	if !ok {
		return
	}
	if next := c.fetchEnd(c.seg.size.Load()); next > c.pos {
		p.startAhead(c.seg, f, next, c.want, c.gen, c)
	}
}

// readAheads are a partition's read-aheads, in file order.
type readAheads []*directRead

// followable reports whether a read-ahead may be appended after c: c is the
// last one and there is room (with c nil: there are none).
func (a readAheads) followable(c *directRead) bool {
	if c == nil {
		return len(a) == 0
	}
	return len(a) > 0 && len(a) < aheadDepth && a[len(a)-1] == c
}

// fetchEnd is where a fetch of c.want bytes starting at c's first batch
// would end: after the first batch and the whole batches that follow it
// within the budget, all wholly in c; c.pos if not even the first is.
func (c *directRead) fetchEnd(limit int64) int64 {
	h, ok := c.header(c.pos, limit)
	if !ok {
		return c.pos
	}
	_, size, ok := c.region(h.base, math.MaxInt64, c.want, limit)
	if !ok {
		return c.pos
	}
	return c.pos + size
}

// isDone reports whether a direct read has landed.
func isDone(c *directRead) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startAhead starts reading the published bytes of s from from on, about
// want bytes (what the next fetch most likely asks for: as much as the
// last one, or its first batch if that was larger) with aheadSpare more,
// and appends it to the partition's read-aheads after read-ahead after
// (nil: as the only one). If after is no longer the last one (a fetch moved
// the read-aheads on meanwhile), or there is no room, nothing is read.
func (p *Partition) startAhead(s *segment, f vfs.File, from, want int64, gen uint64, after *directRead) {
	n := min(want+want/aheadSpare+vfs.DirectAlignment, s.size.Load()-from)
	if n <= 0 || !s.acquire() {
		return
	}
	c := newDirectRead(s, from, gen, 2) // the slot and the reader
	if c == nil {
		s.release()
		return
	}
	c.want = want
	p.aheadMu.Lock()
	if gen != p.aheadGen.Load() || p.closed.Load() || !p.ahead.followable(after) {
		p.aheadMu.Unlock()
		s.release()
		close(c.done)
		c.refs.Store(1)
		c.release()
		return
	}
	p.ahead = append(p.ahead, c)
	p.aheadMu.Unlock()
	go func() {
		defer c.release()
		defer s.release()
		c.read(f, n)
		p.chainAhead(c, f)
	}()
}

// dropAhead forgets the partition's read-aheads: their bytes may no longer
// be the file's (truncation) or nobody will read them (close).
func (p *Partition) dropAhead() {
	p.aheadMu.Lock()
	old := p.ahead
	p.ahead = nil
	p.aheadGen.Add(1)
	p.aheadMu.Unlock()
	for _, c := range old {
		c.release()
	}
}
