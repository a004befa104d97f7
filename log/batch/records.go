package batch

import (
	"encoding/binary"
	"math"
)

// Record layout inside the (uncompressed) records section. Integers marked
// varint/varlong are zigzag-encoded, as in protobuf:
//
//	length          varint   bytes after this field
//	attributes      int8     unused, always 0
//	timestampDelta  varlong  relative to the batch's baseTimestamp
//	offsetDelta     varint   relative to the batch's baseOffset
//	keyLength       varint   -1 for a null key
//	key             bytes
//	valueLength     varint   -1 for a null value (a tombstone)
//	value           bytes
//	headerCount     varint
//	headers         headerCount × (keyLength varint, key, valueLength varint, value)

// Header is one record header. Key and Value alias the decoded records
// section; a null header value is nil.
type Header struct {
	Key   []byte
	Value []byte
}

// Record is one decoded record. Slices alias the records section they were
// decoded from: copy them to keep them past the next Iter.Next call. A null
// key or value is nil; an empty one is a non-nil empty slice.
type Record struct {
	Attributes int8
	// Offset is the absolute offset (the batch's BaseOffset + OffsetDelta).
	Offset int64
	// OffsetDelta is the record's offset relative to the batch's BaseOffset.
	OffsetDelta int32
	// Timestamp is the absolute timestamp in milliseconds (BaseTimestamp +
	// timestampDelta). With LogAppendTime batches Kafka reports MaxTimestamp
	// instead; see Iter.
	Timestamp int64
	Key       []byte
	Value     []byte
	Headers   []Header
}

// Iter walks the records of a batch. Get one from Batch.Records or NewIter,
// or Reset a zero Iter. An Iter is not safe for concurrent use.
//
//	it, err := b.Records(limit)
//	for it.Next() {
//		r := it.Record()
//	}
//	if err := it.Err(); err != nil { ... }
type Iter struct {
	buf        []byte // uncompressed records section
	pos        int
	left       int32 // records still to read
	baseOffset int64
	baseTS     int64
	lastDelta  int32
	prevDelta  int32
	rec        Record
	err        error
	own        []byte // decompression buffer, reused by Reset
}

// NewIter returns an iterator over an uncompressed records section that
// should hold exactly count records, with offsets relative to baseOffset and
// timestamps to baseTimestamp. lastOffsetDelta bounds every offsetDelta.
func NewIter(section []byte, count int32, baseOffset, baseTimestamp int64, lastOffsetDelta int32) *Iter {
	it := &Iter{}
	it.reset(section, count, baseOffset, baseTimestamp, lastOffsetDelta)
	return it
}

func (it *Iter) reset(section []byte, count int32, baseOffset, baseTimestamp int64, lastOffsetDelta int32) {
	hdrs, own := it.rec.Headers[:0], it.own
	*it = Iter{buf: section, left: count, baseOffset: baseOffset, baseTS: baseTimestamp,
		lastDelta: lastOffsetDelta, prevDelta: -1, own: own}
	it.rec.Headers = hdrs
	if count < 0 {
		it.err = errorf(ReasonRecordCount, "recordCount %d", count)
	}
}

// Records decompresses the batch (at most limit bytes of records) and returns
// an iterator over its records. The batch must have passed Validate.
func (b Batch) Records(limit int) (*Iter, error) {
	it := &Iter{}
	if err := it.Reset(b, limit); err != nil {
		return nil, err
	}
	return it, nil
}

// Reset points it at the records of b, like Batch.Records, reusing the
// iterator's decompression buffer: a loop over many batches with one Iter
// allocates nothing once the buffer has grown. Records from the previous
// batch are invalid afterwards. On error the iterator yields nothing.
func (it *Iter) Reset(b Batch, limit int) error {
	sec, err := b.Decompress(it.own, limit)
	if err != nil {
		it.reset(nil, 0, 0, 0, 0)
		it.err = err
		return err
	}
	if b.Codec() != CodecNone {
		it.own = sec
	}
	it.reset(sec, b.RecordCount(), b.BaseOffset(), b.BaseTimestamp(), b.LastOffsetDelta())
	return nil
}

// Next decodes the next record. It returns false at the end or on error;
// check Err afterwards.
func (it *Iter) Next() bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if it.pos != len(it.buf) {
			it.err = errorf(ReasonRecords, "%d bytes after the last record", len(it.buf)-it.pos)
		}
		return false
	}
	if err := it.decode(); err != nil {
		it.err = err
		return false
	}
	it.left--
	return true
}

// Record returns the record Next decoded. It is overwritten by the next call.
func (it *Iter) Record() *Record { return &it.rec }

// Err returns the first decoding error, or nil.
func (it *Iter) Err() error { return it.err }

// decode reads one record at it.pos.
func (it *Iter) decode() error {
	start := it.pos
	length, err := it.varint("record length")
	if err != nil {
		return err
	}
	if length < 0 || int(length) > len(it.buf)-it.pos {
		return errorf(ReasonRecords, "record at byte %d: length %d, %d bytes left", start, length, len(it.buf)-it.pos)
	}
	end := it.pos + int(length)
	body := it.buf[:end] // decode within the record only
	r := rd{b: body, pos: it.pos}
	attrs, ok := r.byte()
	tsDelta, ok2 := r.varlong()
	offDelta, ok3 := r.varint()
	if !ok || !ok2 || !ok3 {
		return errorf(ReasonRecords, "record at byte %d: truncated header", start)
	}
	if offDelta <= it.prevDelta || offDelta > it.lastDelta {
		return errorf(ReasonRecords, "record at byte %d: offsetDelta %d after %d, lastOffsetDelta %d",
			start, offDelta, it.prevDelta, it.lastDelta)
	}
	key, ok := r.bytes()
	if !ok {
		return errorf(ReasonRecords, "record at byte %d: bad key", start)
	}
	val, ok := r.bytes()
	if !ok {
		return errorf(ReasonRecords, "record at byte %d: bad value", start)
	}
	nh, ok := r.varint()
	if !ok || nh < 0 || int(nh) > (end-r.pos)/2 {
		return errorf(ReasonRecords, "record at byte %d: bad header count %d", start, nh)
	}
	hdrs := it.rec.Headers[:0]
	for i := int32(0); i < nh; i++ {
		hk, ok := r.bytes()
		if !ok || hk == nil {
			return errorf(ReasonRecords, "record at byte %d: bad header %d key", start, i)
		}
		hv, ok := r.bytes()
		if !ok {
			return errorf(ReasonRecords, "record at byte %d: bad header %d value", start, i)
		}
		hdrs = append(hdrs, Header{Key: hk, Value: hv})
	}
	if r.pos != end {
		return errorf(ReasonRecords, "record at byte %d: %d bytes unaccounted for", start, end-r.pos)
	}
	it.pos = end
	it.prevDelta = offDelta
	it.rec = Record{
		Attributes:  int8(attrs),
		Offset:      it.baseOffset + int64(offDelta),
		OffsetDelta: offDelta,
		Timestamp:   it.baseTS + tsDelta,
		Key:         key,
		Value:       val,
		Headers:     hdrs,
	}
	return nil
}

func (it *Iter) varint(what string) (int32, error) {
	r := rd{b: it.buf, pos: it.pos}
	v, ok := r.varint()
	if !ok {
		return 0, errorf(ReasonRecords, "bad %s at byte %d", what, it.pos)
	}
	it.pos = r.pos
	return v, nil
}

// rd is a bounds-checked reader of Kafka's zigzag varints.
type rd struct {
	b   []byte
	pos int
}

func (r *rd) byte() (byte, bool) {
	if r.pos >= len(r.b) {
		return 0, false
	}
	r.pos++
	return r.b[r.pos-1], true
}

func (r *rd) varlong() (int64, bool) {
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		return 0, false
	}
	r.pos += n
	return v, true
}

func (r *rd) varint() (int32, bool) {
	v, ok := r.varlong()
	if !ok || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

// bytes reads a varint length and that many bytes; length -1 is nil.
func (r *rd) bytes() ([]byte, bool) {
	n, ok := r.varint()
	if !ok || n < -1 {
		return nil, false
	}
	if n == -1 {
		return nil, true
	}
	if int(n) > len(r.b)-r.pos {
		return nil, false
	}
	v := r.b[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return v, true
}
