// Package batch is a zero-copy view over one Kafka record batch (magic 2, the
// "v2" format used by every Kafka client since 0.11).
//
// A Batch is a []byte holding exactly one batch. Header accessors read fields in
// place; nothing is decoded until a caller asks for records. The layout, all
// integers big-endian:
//
//	offset  size  field
//	 0      8     baseOffset            (assigned by the broker; outside the CRC)
//	 8      4     batchLength           (bytes after this field)
//	12      4     partitionLeaderEpoch  (stamped by the broker; outside the CRC)
//	16      1     magic                 (always 2)
//	17      4     crc                   (CRC-32C, Castagnoli, of bytes 21..end)
//	21      2     attributes            (bits 0-2 codec, 3 timestamp type,
//	                                     4 transactional, 5 control)
//	23      4     lastOffsetDelta
//	27      8     baseTimestamp
//	35      8     maxTimestamp
//	43      8     producerId
//	51      2     producerEpoch
//	53      4     baseSequence
//	57      4     recordCount
//	61      ...   records (compressed as a whole when the codec is not none)
//
// Because the CRC starts at the attributes, the broker may rewrite baseOffset
// and partitionLeaderEpoch without recomputing it.
//
// Records are decoded only on request (Batch.Records, Iter; the record layout
// is drawn in records.go), through decompressors bounded by a caller's limit
// (compress.go: gzip, snappy raw or xerial-framed, lz4 frame, zstd). Build
// (build.go) encodes records into a batch with any codec, producer fields and
// attribute bits; the tests across the project and log compaction use it.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Field positions and sizes of the v2 batch header.
const (
	// HeaderSize is the size of the fixed batch header that precedes the records.
	HeaderSize = 61
	// LogOverhead is the size of the baseOffset and batchLength fields, which
	// are not counted in batchLength.
	LogOverhead = 12
	// Magic is the only batch format version Weir stores.
	Magic = 2

	posBaseOffset           = 0
	posBatchLength          = 8
	posPartitionLeaderEpoch = 12
	posMagic                = 16
	posCRC                  = 17
	posAttributes           = 21
	posLastOffsetDelta      = 23
	posBaseTimestamp        = 27
	posMaxTimestamp         = 35
	posProducerID           = 43
	posProducerEpoch        = 51
	posBaseSequence         = 53
	posRecordCount          = 57
)

// Attribute bits.
const (
	// CodecMask selects the compression codec bits of the attributes.
	CodecMask = 0x07
	// TimestampTypeBit is set when timestamps are LogAppendTime.
	TimestampTypeBit = 0x08
	// TransactionalBit marks a batch written inside a transaction.
	TransactionalBit = 0x10
	// ControlBit marks a control batch (transaction markers).
	ControlBit = 0x20
)

// Codec is a record batch compression codec.
type Codec int8

// The compression codecs Kafka defines.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the codec's Kafka name.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ErrCorrupt is the sentinel every batch validation error unwraps to. The
// broker maps it to CORRUPT_MESSAGE.
var ErrCorrupt = errors.New("batch: corrupt record batch")

// ErrInvalidRecord marks a batch that is well formed but not acceptable from a
// producer (for example a control batch). The broker maps it to INVALID_RECORD.
var ErrInvalidRecord = errors.New("batch: invalid record")

// Reason says which check a batch failed.
type Reason int

// The ways a batch can be wrong.
const (
	ReasonShort       Reason = iota + 1 // fewer bytes than the header or batchLength says
	ReasonLength                        // batchLength smaller than the header or negative
	ReasonMagic                         // magic is not 2
	ReasonCRC                           // CRC-32C mismatch
	ReasonCodec                         // unknown compression codec
	ReasonRecordCount                   // recordCount negative or inconsistent with lastOffsetDelta
	ReasonRecords                       // records section does not decode
	ReasonControl                       // control batch where none is allowed
	ReasonTrailing                      // bytes after the last batch that do not form a batch
	ReasonDecompress                    // records section does not decompress
	ReasonTooLarge                      // records inflate beyond the caller's limit
)

var reasonText = map[Reason]string{
	ReasonShort:       "truncated batch",
	ReasonLength:      "invalid batch length",
	ReasonMagic:       "unsupported magic",
	ReasonCRC:         "CRC mismatch",
	ReasonCodec:       "unknown compression codec",
	ReasonRecordCount: "invalid record count",
	ReasonRecords:     "malformed records",
	ReasonControl:     "control batch not allowed",
	ReasonTrailing:    "trailing bytes",
	ReasonDecompress:  "records do not decompress",
	ReasonTooLarge:    "decompressed records too large",
}

// String describes the reason in a few words.
func (r Reason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Error is the typed error for a batch that fails validation. It unwraps to
// ErrCorrupt, or to ErrInvalidRecord for ReasonControl.
type Error struct {
	Reason Reason
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return "batch: " + e.Reason.String()
	}
	return "batch: " + e.Reason.String() + ": " + e.Detail
}

// Unwrap returns the sentinel the error belongs to.
func (e *Error) Unwrap() error {
	if e.Reason == ReasonControl {
		return ErrInvalidRecord
	}
	return ErrCorrupt
}

func errorf(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is a view over the bytes of exactly one v2 record batch. Accessors do
// not check bounds beyond the header: call Parse (or Validate) first.
type Batch []byte

// Size returns the length of the first batch in b as given by its header
// (LogOverhead + batchLength), or an error if the header is too short or the
// length is impossible. It does not check that b holds that many bytes.
func Size(b []byte) (int, error) {
	if len(b) < LogOverhead {
		return 0, errorf(ReasonShort, "%d bytes, need %d for the length", len(b), LogOverhead)
	}
	n := int32(binary.BigEndian.Uint32(b[posBatchLength:]))
	if n < HeaderSize-LogOverhead {
		return 0, errorf(ReasonLength, "batchLength %d below minimum %d", n, HeaderSize-LogOverhead)
	}
	return LogOverhead + int(n), nil
}

// Parse validates the first batch in b (length, magic, CRC, codec, record
// count) and returns it as a Batch together with its size. It never decodes
// records. The returned Batch aliases b.
func Parse(b []byte) (Batch, error) { return ParseSummed(b, nil) }

// ParseSummed is Parse taking the CRC from sums when b is part of the buffer
// they describe (BlockSums.Checksum); a nil sums reads the batch in full.
func ParseSummed(b []byte, sums *BlockSums) (Batch, error) {
	n, err := Size(b)
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, errorf(ReasonShort, "%d bytes, batch needs %d", len(b), n)
	}
	bt := Batch(b[:n])
	return bt, bt.validate(sums)
}

// Validate checks the header fields and CRC of a batch whose length is already
// known to be right.
func (b Batch) Validate() error { return b.validate(nil) }

func (b Batch) validate(sums *BlockSums) error {
	if len(b) < HeaderSize {
		return errorf(ReasonShort, "%d bytes, header needs %d", len(b), HeaderSize)
	}
	if m := b[posMagic]; m != Magic {
		return errorf(ReasonMagic, "magic %d", m)
	}
	got, ok := sums.Checksum(b[posAttributes:])
	if !ok {
		got = crc32.Checksum(b[posAttributes:], castagnoli)
	}
	if want := b.CRC(); got != want {
		return errorf(ReasonCRC, "stored %08x, computed %08x", want, got)
	}
	if c := b.Codec(); c > CodecZstd || c < CodecNone {
		return errorf(ReasonCodec, "codec %d", c)
	}
	count, lod := b.RecordCount(), b.LastOffsetDelta()
	if count < 0 || lod < 0 {
		return errorf(ReasonRecordCount, "recordCount %d, lastOffsetDelta %d", count, lod)
	}
	if count > 0 && lod < count-1 {
		return errorf(ReasonRecordCount, "recordCount %d exceeds lastOffsetDelta+1 = %d", count, lod+1)
	}
	return nil
}

// ComputeCRC returns the CRC-32C of bytes 21..end, the value the crc field
// must hold.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[posAttributes:], castagnoli) }

// SetCRC recomputes and stores the CRC; needed after changing any field from
// the attributes on.
func (b Batch) SetCRC() { binary.BigEndian.PutUint32(b[posCRC:], b.ComputeCRC()) }

// BaseOffset is the offset of the first record in the batch.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[posBaseOffset:])) }

// SetBaseOffset stores the batch's base offset (outside the CRC).
func (b Batch) SetBaseOffset(o int64) { binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(o)) }

// BatchLength is the header's batchLength field: the size minus LogOverhead.
func (b Batch) BatchLength() int32 { return int32(binary.BigEndian.Uint32(b[posBatchLength:])) }

// PartitionLeaderEpoch is the leader epoch stamped by the broker that appended the batch.
func (b Batch) PartitionLeaderEpoch() int32 {
	return int32(binary.BigEndian.Uint32(b[posPartitionLeaderEpoch:]))
}

// SetPartitionLeaderEpoch stores the leader epoch (outside the CRC).
func (b Batch) SetPartitionLeaderEpoch(e int32) {
	binary.BigEndian.PutUint32(b[posPartitionLeaderEpoch:], uint32(e))
}

// Magic returns the format version byte.
func (b Batch) Magic() int8 { return int8(b[posMagic]) }

// CRC returns the stored CRC-32C.
func (b Batch) CRC() uint32 { return binary.BigEndian.Uint32(b[posCRC:]) }

// Attributes returns the raw attribute bits.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[posAttributes:])) }

// Codec returns the compression codec of the records section.
func (b Batch) Codec() Codec { return Codec(b.Attributes() & CodecMask) }

// IsLogAppendTime reports whether the batch uses LogAppendTime timestamps.
func (b Batch) IsLogAppendTime() bool { return b.Attributes()&TimestampTypeBit != 0 }

// IsTransactional reports whether the batch was written inside a transaction.
func (b Batch) IsTransactional() bool { return b.Attributes()&TransactionalBit != 0 }

// IsControl reports whether the batch is a control batch (transaction marker).
func (b Batch) IsControl() bool { return b.Attributes()&ControlBit != 0 }

// LastOffsetDelta is the offset of the last record relative to BaseOffset.
func (b Batch) LastOffsetDelta() int32 { return int32(binary.BigEndian.Uint32(b[posLastOffsetDelta:])) }

// LastOffset is the offset of the last record in the batch.
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// NextOffset is the offset that follows the batch.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// BaseTimestamp is the timestamp of the first record (ms since the epoch).
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[posBaseTimestamp:])) }

// MaxTimestamp is the largest record timestamp in the batch.
func (b Batch) MaxTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[posMaxTimestamp:])) }

// ProducerID is the idempotent producer id, or -1.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[posProducerID:])) }

// ProducerEpoch is the idempotent producer epoch, or -1.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[posProducerEpoch:])) }

// BaseSequence is the sequence number of the first record, or -1.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[posBaseSequence:])) }

// LastSequence is the sequence number of the last record (wrapping at
// MaxInt32 as Kafka does), or -1 when the batch has no sequence.
func (b Batch) LastSequence() int32 {
	s := b.BaseSequence()
	if s < 0 {
		return -1
	}
	return int32((int64(s) + int64(b.LastOffsetDelta())) % (1 << 31))
}

// RecordCount is the number of records the header claims.
func (b Batch) RecordCount() int32 { return int32(binary.BigEndian.Uint32(b[posRecordCount:])) }

// RecordsSection returns the (possibly compressed) bytes after the header.
func (b Batch) RecordsSection() []byte { return b[HeaderSize:] }
