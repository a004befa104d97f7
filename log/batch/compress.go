package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression formats, as Kafka clients write them:
//
//   - gzip: one or more gzip members (RFC 1952).
//   - snappy: either one raw snappy block (librdkafka, franz-go) or the
//     xerial framing Java clients send: the 8-byte magic "\x82SNAPPY\x00",
//     two int32 versions, then chunks of [int32 big-endian length][raw block].
//   - lz4: the LZ4 frame format (Kafka fixed the header checksum in KIP-57).
//   - zstd: one or more zstd frames.

// xerialMagic opens a xerial-framed snappy stream.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// xerialHeaderSize is the magic plus the version and compatible-version ints.
const xerialHeaderSize = 16

// zstdMaxWindow caps the zstd window a frame may ask for, so a hostile frame
// header cannot make the decoder reserve a huge history buffer. Kafka clients
// use windows of a few MiB at most.
const zstdMaxWindow = 64 << 20

var (
	zstdDecoders = sync.Pool{New: func() any {
		// Concurrency 1 decodes synchronously: no goroutines to leak.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			panic("batch: zstd decoder options rejected: " + err.Error())
		}
		return d
	}}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	gzipReaders sync.Pool // *gzip.Reader; New is not set because NewReader needs input
)

// Decompress returns the batch's uncompressed records section, appended to
// dst[:0] when a new buffer is needed. For CodecNone it returns the section
// itself (aliasing b) without copying. The result may not exceed limit bytes:
// a batch that would inflate beyond it fails with ReasonTooLarge, after
// reading at most limit+1 decompressed bytes, so a compression bomb costs no
// more than the caller allowed.
func (b Batch) Decompress(dst []byte, limit int) ([]byte, error) {
	if len(b) < HeaderSize {
		return nil, errorf(ReasonShort, "%d bytes, header needs %d", len(b), HeaderSize)
	}
	src := b.RecordsSection()
	codec := b.Codec()
	if codec == CodecNone {
		if len(src) > limit {
			return nil, errorf(ReasonTooLarge, "%d record bytes, limit %d", len(src), limit)
		}
		return src, nil
	}
	out, err := decompress(dst[:0], codec, src, limit)
	if err != nil {
		if _, ok := errors.AsType[*Error](err); ok {
			return nil, err
		}
		return nil, errorf(ReasonDecompress, "%s: %v", codec, err)
	}
	return out, nil
}

func decompress(dst []byte, c Codec, src []byte, limit int) ([]byte, error) {
	switch c {
	case CodecGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, err
		}
		defer gzipReaders.Put(zr)
		hint := 4 * len(src)
		if len(src) >= 4 { // ISIZE: the last member's size mod 2^32, a hint only
			hint = int(binary.LittleEndian.Uint32(src[len(src)-4:]))
		}
		return readLimited(dst, zr, limit, min(hint, 1024*len(src)))
	case CodecSnappy:
		return snappyDecode(dst, src, limit)
	case CodecLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(zr)
		zr.Reset(bytes.NewReader(src))
		return readLimited(dst, zr, limit, 4*len(src))
	case CodecZstd:
		zr := zstdDecoders.Get().(*zstd.Decoder)
		defer zstdDecoders.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, err
		}
		hint := 4 * len(src)
		var h zstd.Header
		if h.Decode(src) == nil && h.HasFCS && h.FrameContentSize < uint64(limit) {
			hint = int(h.FrameContentSize)
		}
		return readLimited(dst, zr, limit, min(hint, 1024*len(src)))
	}
	return nil, errorf(ReasonCodec, "codec %d", c)
}

// readLimited reads r to EOF into dst, failing once more than limit bytes
// come out. The buffer grows as data arrives, never ahead of it.
// hint is the expected size (from the stream's own header, capped by the
// callers at 1024 times the compressed size, about deflate's best ratio); it
// is trusted only up to limit+1, so a lying header costs no more than the
// caller allowed.
func readLimited(dst []byte, r io.Reader, limit, hint int) ([]byte, error) {
	lr := io.LimitedReader{R: r, N: int64(limit) + 1}
	if cap(dst) == 0 {
		// +1 so that reading to EOF does not force a final doubling.
		dst = make([]byte, 0, min(limit+1, max(4096, hint+1)))
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, errorf(ReasonTooLarge, "records inflate beyond %d bytes", limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// snappyDecode decodes a raw snappy block or a xerial-framed stream, checking
// each block's declared size against the limit before decoding it.
func snappyDecode(dst, src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(dst, src, limit)
	}
	if len(src) < xerialHeaderSize {
		return nil, errors.New("xerial header truncated")
	}
	pos := xerialHeaderSize
	for pos < len(src) {
		if len(src)-pos < 4 {
			return nil, errors.New("xerial chunk length truncated")
		}
		n := int(binary.BigEndian.Uint32(src[pos:]))
		pos += 4
		if n < 0 || n > len(src)-pos {
			return nil, errors.New("xerial chunk overruns the data")
		}
		var err error
		dst, err = snappyBlock(dst, src[pos:pos+n], limit)
		if err != nil {
			return nil, err
		}
		pos += n
	}
	return dst, nil
}

// snappyBlock appends one decoded raw snappy block to dst.
func snappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > limit-len(dst) {
		return nil, errorf(ReasonTooLarge, "records inflate beyond %d bytes", limit)
	}
	out := dst
	if cap(out)-len(out) < n {
		out = make([]byte, len(dst), len(dst)+n)
		copy(out, dst)
	}
	dec, err := snappy.Decode(out[len(out):len(out)+n], block)
	if err != nil {
		return nil, err
	}
	if len(dec) != n {
		return nil, errors.New("snappy block shorter than declared")
	}
	return out[:len(out)+n], nil
}
