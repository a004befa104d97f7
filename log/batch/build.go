package batch

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Options are the batch-level fields Build writes. The zero value builds an
// uncompressed, non-idempotent batch at base offset 0.
type Options struct {
	Codec                Codec
	BaseOffset           int64
	PartitionLeaderEpoch int32

	// Idempotent makes Build write ProducerID, ProducerEpoch and
	// BaseSequence as given; without it all three are -1.
	Idempotent    bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32

	Transactional bool
	Control       bool
	LogAppendTime bool

	// KeepOffsetDeltas uses each Record.OffsetDelta as given (strictly
	// increasing); otherwise record i gets offsetDelta i. Compaction keeps
	// the deltas of the records it retains.
	KeepOffsetDeltas bool
	// LastOffsetDelta, with KeepOffsetDeltas, is the batch's lastOffsetDelta
	// when larger than the last record's delta (a compacted batch keeps the
	// original one so the next batch's offset does not move).
	LastOffsetDelta int32

	// BaseTimestamp and MaxTimestamp are used for a batch with no records.
	// With LogAppendTime a non-zero MaxTimestamp is the append time.
	// Otherwise both come from the records' timestamps.
	BaseTimestamp int64
	MaxTimestamp  int64

	// XerialSnappy frames snappy output as Java clients do instead of
	// writing one raw block.
	XerialSnappy bool
}

// Build encodes records into a new v2 batch with a valid CRC.
func Build(o Options, recs ...Record) (Batch, error) {
	b, err := AppendBuild(nil, o, recs...)
	if err != nil {
		return nil, err
	}
	return Batch(b), nil
}

// MustBuild is Build for tests and fixtures: it panics on invalid input.
func MustBuild(o Options, recs ...Record) Batch {
	b, err := Build(o, recs...)
	if err != nil {
		panic(err)
	}
	return b
}

// AppendBuild appends the encoded batch to dst and returns the extended
// slice. On error dst is returned unchanged in length.
func AppendBuild(dst []byte, o Options, recs ...Record) ([]byte, error) {
	if o.Codec < CodecNone || o.Codec > CodecZstd {
		return dst, fmt.Errorf("batch: build: unknown codec %d", o.Codec)
	}
	if len(recs) > math.MaxInt32 {
		return dst, fmt.Errorf("batch: build: %d records", len(recs))
	}
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)

	baseTS, maxTS := o.BaseTimestamp, o.MaxTimestamp
	if len(recs) > 0 {
		baseTS, maxTS = recs[0].Timestamp, recs[0].Timestamp
		for _, r := range recs[1:] {
			maxTS = max(maxTS, r.Timestamp)
		}
	}
	lastDelta := int32(len(recs) - 1)
	if o.KeepOffsetDeltas {
		prev := int32(-1)
		for i, r := range recs {
			if r.OffsetDelta <= prev {
				return dst[:start], fmt.Errorf("batch: build: record %d offsetDelta %d not above %d", i, r.OffsetDelta, prev)
			}
			prev = r.OffsetDelta
		}
		lastDelta = max(prev, o.LastOffsetDelta)
	}
	if lastDelta < 0 {
		lastDelta = 0 // an empty batch still covers one offset slot
		if o.KeepOffsetDeltas {
			lastDelta = max(o.LastOffsetDelta, 0)
		}
	}

	if len(recs) == 0 {
		o.Codec = CodecNone
	}
	var raw []byte
	if o.Codec != CodecNone {
		raw = getBuf()
		defer func() { putBuf(raw) }()
	} else {
		raw = dst
	}
	for i, r := range recs {
		delta := int32(i)
		if o.KeepOffsetDeltas {
			delta = r.OffsetDelta
		}
		raw = appendRecord(raw, r, delta, r.Timestamp-baseTS)
	}
	if o.Codec != CodecNone {
		var err error
		dst, err = compress(dst, o.Codec, raw, o.XerialSnappy)
		if err != nil {
			return dst[:start], fmt.Errorf("batch: build: %s: %w", o.Codec, err)
		}
	} else {
		dst = raw
	}
	h := Batch(dst[start:])
	if len(h)-LogOverhead > math.MaxInt32 {
		return dst[:start], fmt.Errorf("batch: build: batch of %d bytes", len(h))
	}

	attrs := int16(o.Codec) // CodecNone for an empty batch, as Kafka writes them
	if o.LogAppendTime {
		attrs |= TimestampTypeBit
		if o.MaxTimestamp != 0 {
			maxTS = o.MaxTimestamp
		}
	}
	if o.Transactional {
		attrs |= TransactionalBit
	}
	if o.Control {
		attrs |= ControlBit
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if o.Idempotent {
		pid, epoch, seq = o.ProducerID, o.ProducerEpoch, o.BaseSequence
	}
	be := binary.BigEndian
	be.PutUint64(h[posBaseOffset:], uint64(o.BaseOffset))
	be.PutUint32(h[posBatchLength:], uint32(len(h)-LogOverhead))
	be.PutUint32(h[posPartitionLeaderEpoch:], uint32(o.PartitionLeaderEpoch))
	h[posMagic] = Magic
	be.PutUint16(h[posAttributes:], uint16(attrs))
	be.PutUint32(h[posLastOffsetDelta:], uint32(lastDelta))
	be.PutUint64(h[posBaseTimestamp:], uint64(baseTS))
	be.PutUint64(h[posMaxTimestamp:], uint64(maxTS))
	be.PutUint64(h[posProducerID:], uint64(pid))
	be.PutUint16(h[posProducerEpoch:], uint16(epoch))
	be.PutUint32(h[posBaseSequence:], uint32(seq))
	be.PutUint32(h[posRecordCount:], uint32(len(recs)))
	h.SetCRC()
	return dst, nil
}

// appendRecord appends one encoded record (see the layout in records.go).
func appendRecord(dst []byte, r Record, offsetDelta int32, tsDelta int64) []byte {
	var body [3 * binary.MaxVarintLen64]byte
	n := 1 // attributes
	body[0] = byte(r.Attributes)
	n += binary.PutVarint(body[n:], tsDelta)
	n += binary.PutVarint(body[n:], int64(offsetDelta))
	size := n + bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
	for _, h := range r.Headers {
		size += bytesLen(h.Key) + bytesLen(h.Value)
	}
	dst = binary.AppendVarint(dst, int64(size))
	dst = append(dst, body[:n]...)
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.Value)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = appendBytes(dst, h.Key)
		dst = appendBytes(dst, h.Value)
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func varintLen(v int64) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutVarint(tmp[:], v)
}

var (
	bufPool     = sync.Pool{New: func() any { return new([]byte) }}
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
)

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > 1<<20 {
		return
	}
	bufPool.Put(&b)
}

// sliceWriter appends to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// compress appends src compressed with c to dst.
func compress(dst []byte, c Codec, src []byte, xerial bool) ([]byte, error) {
	switch c {
	case CodecGzip:
		w := &sliceWriter{b: dst}
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(w)
		if _, err := zw.Write(src); err != nil {
			return dst, err
		}
		if err := zw.Close(); err != nil {
			return dst, err
		}
		return w.b, nil
	case CodecSnappy:
		if !xerial {
			return append(dst, snappy.Encode(nil, src)...), nil
		}
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1) // version
		dst = binary.BigEndian.AppendUint32(dst, 1) // minimum compatible version
		const chunk = 32 << 10
		for len(src) > 0 {
			n := min(chunk, len(src))
			blk := snappy.Encode(nil, src[:n])
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(blk)))
			dst = append(dst, blk...)
			src = src[n:]
		}
		return dst, nil
	case CodecLZ4:
		w := &sliceWriter{b: dst}
		zw := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(zw)
		zw.Reset(w)
		if err := zw.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			return dst, err
		}
		if _, err := zw.Write(src); err != nil {
			return dst, err
		}
		if err := zw.Close(); err != nil {
			return dst, err
		}
		return w.b, nil
	case CodecZstd:
		zstdEncOnce.Do(func() {
			var err error
			zstdEnc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			if err != nil {
				panic("batch: zstd encoder options rejected: " + err.Error())
			}
		})
		return zstdEnc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("unknown codec %d", c)
}
