package log

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/weir-broker/weir/log/vfs"
)

// Index entry sizes (see the package doc for the layouts).
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
	// memChunk is the number of offset index entries per in-memory chunk of
	// the active segment's index.
	memChunk = 512
	// indexFlushEntries is how many pending index entries the writer buffers
	// before writing them to the index files in one call.
	indexFlushEntries = 256
)

// packEntry packs an offset index entry (relative offset, position).
func packEntry(rel, pos uint32) uint64 { return uint64(rel)<<32 | uint64(pos) }

func unpackEntry(e uint64) (rel, pos uint32) { return uint32(e >> 32), uint32(e) }

// memIndex is the active segment's offset index held in memory, so readers of
// the tail never touch the index file. The single writer appends; readers
// load n first and then read entries below n, so they only see entries whose
// stores happened before n was published.
type memIndex struct {
	chunks atomic.Pointer[[]*[memChunk]uint64]
	n      atomic.Int64
}

func newMemIndex() *memIndex {
	m := &memIndex{}
	m.chunks.Store(&[]*[memChunk]uint64{})
	return m
}

// add appends an entry. Writer only.
func (m *memIndex) add(e uint64) {
	i := m.n.Load()
	cs := *m.chunks.Load()
	if int(i/memChunk) >= len(cs) {
		grown := make([]*[memChunk]uint64, len(cs)+1)
		copy(grown, cs)
		grown[len(cs)] = new([memChunk]uint64)
		m.chunks.Store(&grown)
		cs = grown
	}
	atomic.StoreUint64(&cs[i/memChunk][i%memChunk], e)
	m.n.Store(i + 1)
}

// truncate keeps the first n entries. Writer only; readers racing with it may
// still see the dropped entries, which point at bytes past the published size
// and are ignored by the scan that follows a lookup.
func (m *memIndex) truncate(n int64) {
	if n < m.n.Load() {
		m.n.Store(n)
	}
}

func (m *memIndex) len() int64 { return m.n.Load() }

func (m *memIndex) at(i int64) uint64 {
	cs := *m.chunks.Load()
	return atomic.LoadUint64(&cs[i/memChunk][i%memChunk])
}

// indexReader reads entries of an offset index, from memory or from the file.
type indexReader interface {
	len() int64
	at(i int64) uint64
}

// fileIndex reads offset index entries from a file with ReadAt.
type fileIndex struct {
	f   vfs.File
	n   int64
	err error
}

func (fi *fileIndex) len() int64 { return fi.n }

func (fi *fileIndex) at(i int64) uint64 {
	var b [offsetEntrySize]byte
	if _, err := fi.f.ReadAt(b[:], i*offsetEntrySize); err != nil {
		fi.err = err
		return 0
	}
	return packEntry(binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:]))
}

// floorEntry returns the position of the largest entry whose relative offset
// is <= rel, or 0 when there is none. Entries hold the last offset of the
// batch that starts at the position, so scanning from that position finds the
// batch that contains any offset > rel.
func floorEntry(ix indexReader, rel uint32, limitPos int64) int64 {
	lo := firstAbove(ix, int64(rel))
	for i := lo - 1; i >= 0; i-- {
		_, pos := unpackEntry(ix.at(i))
		if int64(pos) < limitPos {
			return int64(pos)
		}
	}
	return 0
}

// firstAbove returns the index of the first entry whose relative offset is
// above rel (ix.len() if none); rel may be -1.
func firstAbove(ix indexReader, rel int64) int64 {
	lo, hi := int64(0), ix.len()
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r, _ := unpackEntry(ix.at(mid)); int64(r) <= rel {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// ceilEntry returns the position of the smallest entry whose relative
// offset is >= rel and whose position is below limitPos, or -1 when there is
// none. Its batch holds offset rel or a later one, so the batch holding rel
// starts at or before it.
func ceilEntry(ix indexReader, rel uint32, limitPos int64) int64 {
	lo := firstAbove(ix, int64(rel)-1)
	if lo < ix.len() {
		if _, pos := unpackEntry(ix.at(lo)); int64(pos) < limitPos {
			return int64(pos)
		}
	}
	return -1
}

// readTimeEntry reads time index entry i.
func readTimeEntry(f vfs.File, i int64) (ts int64, rel uint32, err error) {
	var b [timeEntrySize]byte
	if _, err := f.ReadAt(b[:], i*timeEntrySize); err != nil {
		return 0, 0, err
	}
	return int64(binary.BigEndian.Uint64(b[0:])), binary.BigEndian.Uint32(b[8:]), nil
}

// appendOffsetEntry and appendTimeEntry encode index entries onto b.
func appendOffsetEntry(b []byte, e uint64) []byte {
	rel, pos := unpackEntry(e)
	b = binary.BigEndian.AppendUint32(b, rel)
	return binary.BigEndian.AppendUint32(b, pos)
}

func appendTimeEntry(b []byte, ts int64, rel uint32) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(ts))
	return binary.BigEndian.AppendUint32(b, rel)
}

// loadOffsetIndex reads a whole offset index file into a memIndex, checking
// that entries increase and point inside a log of logSize bytes. A damaged
// index yields an error; the caller rebuilds it.
func loadOffsetIndex(f vfs.File, logSize int64) (*memIndex, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size%offsetEntrySize != 0 {
		return nil, fmt.Errorf("size %d not a multiple of %d", size, offsetEntrySize)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, err
	}
	m := newMemIndex()
	var prevRel, prevPos uint32
	for i := 0; i < len(buf); i += offsetEntrySize {
		rel, pos := binary.BigEndian.Uint32(buf[i:]), binary.BigEndian.Uint32(buf[i+4:])
		if i > 0 && (rel <= prevRel || pos <= prevPos) || int64(pos) >= logSize {
			return nil, fmt.Errorf("entry %d (%d, %d) out of order or past the log end", i/offsetEntrySize, rel, pos)
		}
		prevRel, prevPos = rel, pos
		m.add(packEntry(rel, pos))
	}
	return m, nil
}
